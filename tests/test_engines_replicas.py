"""Three replicas of one engine on one consumer group (subprocesses, distinct consumers):
every snapshot is processed exactly once between them, and a replica SIGKILLed mid-stream
loses nothing (its pending entries are claimed by the others)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis

from shared.bus import replies, streams
from shared.bus.worker import read_health
from shared.config import PROJECT_ROOT, Settings
from shared.contract.codec import EncodedMessage
from tests.engines_support import daily_snapshot, history
from tests.test_engines import blocks
from tests.waiting import wait_for

pytestmark = pytest.mark.slow

SERVICE = "direction"


def snapshots(count: int) -> list[EncodedMessage]:
    from shared.contract.codec import encode

    _, features = history()
    days = [d.date().isoformat() for d in features.index[400 : 400 + count]]
    return [encode(daily_snapshot(day)) for day in days]


@contextmanager
def replicas(settings: Settings, count: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    env = {
        **os.environ,
        "AEGIS_REDIS_URL": settings.redis_url,
        "AEGIS_EMBEDDED_REDIS": "false",
        "AEGIS_MODEL_DIR": str(settings.model_dir),
        "AEGIS_CLAIM_IDLE_MS": "500",
        "AEGIS_BLOCK_MS": "100",
        "AEGIS_READ_COUNT": "4",
        "AEGIS_CLOCK": "event",
        "AEGIS_LOG_LEVEL": "WARNING",
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", f"services.{SERVICE}"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=20)


def ready(client: redis.Redis, count: int) -> bool:
    return len([h for h in read_health(client) if h["service"] == SERVICE]) >= count


def publish(client: redis.Redis, entries: list[EncodedMessage]) -> None:
    pipe = client.pipeline(transaction=False)
    for fields in entries:
        replies.xadd(pipe, streams.FEATURES, fields)
    pipe.execute()


def all_blocks(client: redis.Redis, count: int) -> Counter[int]:
    def done() -> Counter[int] | None:
        seen = Counter(b.as_of for b in blocks(client, SERVICE))
        return seen if len(seen) >= count else None

    return wait_for(done, timeout_s=120, interval_s=0.1, message=f"{count} distinct blocks")


def test_three_replicas_process_each_snapshot_exactly_once(
    settings: Settings, redis_client: redis.Redis
) -> None:
    entries = snapshots(300)
    with replicas(settings, 3):
        wait_for(lambda: ready(redis_client, 3), timeout_s=60, message="3 replicas up")
        publish(redis_client, entries)
        seen = all_blocks(redis_client, len(entries))
        workers = wait_for(
            lambda: (
                [
                    h
                    for h in read_health(redis_client)
                    if h["service"] == SERVICE and h["processed"] > 0
                ]
                if sum(h["processed"] for h in read_health(redis_client) if h["service"] == SERVICE)
                == len(entries)
                else None
            ),
            message="health reports of every replica",
        )
    assert set(seen.values()) == {1}
    assert len(workers) >= 2  # the group shared the work


def test_sigkilled_replica_loses_nothing(settings: Settings, redis_client: redis.Redis) -> None:
    entries = snapshots(1200)
    with replicas(settings, 3) as procs:
        wait_for(lambda: ready(redis_client, 3), timeout_s=60, message="3 replicas up")
        victim = procs[0]
        consumer = next(
            h["consumer"]
            for h in read_health(redis_client)
            if h["service"] == SERVICE and h["consumer"].endswith(f"-{victim.pid}")
        )
        publish(redis_client, entries)
        wait_for(lambda: len(blocks(redis_client, SERVICE)) >= 50, message="work under way")

        def caught_mid_batch() -> int:
            """Freeze the victim; kill it only while it holds unacknowledged entries."""
            victim.send_signal(signal.SIGSTOP)
            held = redis_client.xpending_range(
                streams.FEATURES, SERVICE, "-", "+", 100, consumername=consumer
            )
            if held:
                victim.kill()
                return len(held)
            victim.send_signal(signal.SIGCONT)
            return 0

        held = wait_for(
            caught_mid_batch,
            timeout_s=30,
            interval_s=0.005,
            message="victim holding pending entries",
        )
        victim.wait(timeout=10)
        seen = all_blocks(redis_client, len(entries))
    assert held > 0
    assert set(seen.values()) == {1}  # nothing lost, nothing published twice
    assert redis_client.xpending(streams.FEATURES, SERVICE)["pending"] == 0
