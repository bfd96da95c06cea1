"""Services follow a Redis Sentinel failover, on loopback with real processes: a primary, a
replica and three sentinels (ACL users for replication and monitoring); ingest and features
run as their own processes and ACL users, connected through the sentinels. The primary is
SIGKILLed mid-replay; the replica is promoted, both services reconnect to it, and the replay
ends with exactly the bars and feature snapshots of a clean run on a single Redis."""

from __future__ import annotations

import asyncio
import operator
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
import redis
from rq import Queue, SimpleWorker

from services.ingest.sources.file_replay import ReplayWindow
from services.trainer.jobs import redis_for_rq
from shared.bus import replies, streams
from shared.bus.publish import connect_async
from shared.config import Settings
from shared.redis_ops.acl import load_or_create_passwords
from shared.redis_ops.server import RedisSentinel, RedisServer, RedisServerError, find_redis_server
from tests.pipeline import SHORT_WINDOW, feature_payloads, ingest, run_features
from tests.ports import free_port
from tests.processes import start_service
from tests.waiting import wait_for

pytestmark = pytest.mark.slow

MASTER = "aegis"
SENTINEL_PASSWORD = "sentinel-clients-secret"


@dataclass
class Replicated:
    primary: RedisServer
    replica: RedisServer
    sentinels: list[RedisSentinel]
    passwords: dict[str, str]

    @property
    def sentinel_list(self) -> str:
        return ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)

    def env(self, user: str) -> dict[str, str]:
        """A service process connecting through the sentinels as ``user``."""
        return {
            "AEGIS_REDIS_URL": "redis://127.0.0.1:1/0",  # unused: the sentinels name the primary
            "AEGIS_REDIS_USER": user,
            "AEGIS_REDIS_PASSWORD": self.passwords[user],
            "AEGIS_REDIS_SENTINELS": self.sentinel_list,
            "AEGIS_REDIS_SENTINEL_MASTER": MASTER,
            "AEGIS_REDIS_SENTINEL_PASSWORD": SENTINEL_PASSWORD,
            "AEGIS_EMBEDDED_REDIS": "false",
        }

    def settings(self, user: str) -> Settings:
        """The same, for a client in this process."""
        return Settings(
            redis_url="redis://127.0.0.1:1/0",
            redis_user=user,
            redis_password=self.passwords[user],
            redis_sentinels=self.sentinel_list,
            redis_sentinel_master=MASTER,
            redis_sentinel_password=SENTINEL_PASSWORD,
            embedded_redis=False,
        )


@pytest.fixture()
def replicated(tmp_path: Path) -> Iterator[Replicated]:
    try:
        find_redis_server()
    except RedisServerError as exc:
        pytest.skip(f"no redis-server binary for the primary, replica and sentinels: {exc}")
    passwords = load_or_create_passwords(tmp_path / "credentials.json")
    replication = ["--masteruser", "replica", "--masterauth", passwords["replica"]]
    primary = RedisServer(
        free_port(), "", tmp_path / "primary", passwords=passwords, extra_args=replication
    ).start()
    replica = RedisServer(
        free_port(),
        "",
        tmp_path / "replica",
        passwords=passwords,
        extra_args=[*replication, "--replicaof", "127.0.0.1", str(primary.port)],
    )
    sentinels: list[RedisSentinel] = []
    try:
        replica.start()
        wait_for(
            lambda: replica.client().info("replication")["master_link_status"] == "up",
            20,
            "the replica to sync",
        )
        for i in range(3):
            sentinels.append(
                RedisSentinel(
                    free_port(),
                    tmp_path / f"sentinel-{i}",
                    MASTER,
                    primary.port,
                    auth_password=passwords["sentinel"],
                    password=SENTINEL_PASSWORD,
                ).start()
            )

        def sentinels_ready() -> bool:
            views = [s.client().sentinel_master(MASTER) for s in sentinels]
            return all(
                isinstance(v, dict) and v["num-other-sentinels"] == 2 and v["num-slaves"] == 1
                for v in views
            )

        wait_for(sentinels_ready, 30, "the sentinels to find each other and the replica")
        yield Replicated(primary, replica, sentinels, passwords)
    finally:
        for sentinel in sentinels:
            sentinel.stop()
        replica.stop()
        primary.stop()


def service_env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "AEGIS_CLOCK": "event",
        "AEGIS_BLOCK_MS": "100",
        "AEGIS_CLAIM_IDLE_MS": "1000",
        "AEGIS_LOG_JSON": "true",
        "AEGIS_VAR_DIR": str(tmp_path / "var"),
        "AEGIS_REPLAY_WATCH": "false",  # ingest exits when its replay ends
    }


def replay_window_env() -> dict[str, str]:
    """The short replay, its minutes paced so that the test has time to fail a server."""
    window = SHORT_WINDOW
    assert window.daily_from and window.intraday_from and window.end
    return {
        "AEGIS_REPLAY_DAILY_FROM": window.daily_from,
        "AEGIS_REPLAY_INTRADAY_FROM": window.intraday_from,
        "AEGIS_REPLAY_END": window.end,
        "AEGIS_REPLAY_PACED_FROM": window.intraday_from,
        "AEGIS_REPLAY_SPEED": "4000",
    }


def wait_promoted(replicated: Replicated) -> redis.Redis:
    """Every sentinel names the replica as the primary; a client of it."""
    new_primary = ("127.0.0.1", replicated.replica.port)
    for sentinel in replicated.sentinels:

        def names_the_replica(s: RedisSentinel = sentinel) -> bool:
            return s.primary() == new_primary

        wait_for(names_the_replica, 60, "the replica promoted")
    return replicated.replica.client()


def test_services_follow_a_sentinel_failover_and_lose_nothing(
    replicated: Replicated, settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    ingest(settings)  # the clean run, on the single test Redis
    run_features(settings)
    clean_bars = redis_client.xlen(streams.BARS)
    clean_features = feature_payloads(redis_client)
    assert clean_bars > 1500 and len(clean_features) > 1400

    common, window = service_env(tmp_path), replay_window_env()
    logs = {name: tmp_path / f"{name}.log" for name in ("ingest", "features")}
    features = start_service("features", {**common, **replicated.env("features")}, logs["features"])
    feeder = start_service(
        "ingest", {**common, **window, **replicated.env("ingest")}, logs["ingest"]
    )
    try:
        primary = replicated.primary.client()
        wait_for(lambda: primary.xlen(streams.BARS) >= 600, 60, "the replay to get going")
        replicated.primary.kill()
        assert feeder.poll() is None, "the replay ended before the primary was killed"

        promoted = wait_promoted(replicated)
        with pytest.raises(redis.AuthenticationError):  # the sentinels want their password
            redis.Redis(port=replicated.sentinels[0].port).sentinel_masters()
        assert promoted.info("replication")["role"] == "master"

        assert wait_for(lambda: feeder.poll() is not None, 120, "the replay to end") and (
            feeder.returncode == 0
        )

        def features_caught_up() -> bool:
            groups = {g["name"].decode(): g for g in promoted.xinfo_groups(streams.BARS)}
            group = groups.get("features")
            return group is not None and group["pending"] == 0 and group["lag"] == 0

        wait_for(features_caught_up, 120, "features to consume every bar on the new primary")
    finally:
        for proc in (feeder, features):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)

    assert promoted.xlen(streams.BARS) == clean_bars
    assert feature_payloads(promoted) == clean_features  # same snapshots, same order, no gap
    # the gateway's asyncio client finds the new primary through the sentinels too
    gateway = replicated.settings("gateway")

    async def newest_block() -> list[replies.Entry]:
        client = connect_async(gateway, socket_timeout_s=5)
        try:
            return await replies.xrevrange_async(client, streams.BLOCKS, count=1)
        finally:
            await client.aclose()

    newest = asyncio.run(newest_block())
    assert newest == replies.xrevrange(promoted, streams.BLOCKS, count=1) != []

    # and so does the training queue's rq connection
    trainer = redis_for_rq(replicated.settings("trainer"))
    queue = Queue("failover-check", connection=trainer)
    job = queue.enqueue(operator.add, 2, 3)
    SimpleWorker([queue], connection=trainer).work(burst=True)
    assert job.latest_result() is not None and job.return_value() == 5

    # features lost its connection and reconnected through the sentinels. Ingest's client
    # either retried transparently (redis-py retries on a new connection, which asks the
    # sentinels again) or ingest re-sent its batch: bars already stored count as duplicates,
    # so every bar is on the stream exactly once (the xlen above) and none is dead-lettered.
    assert b"redis_unavailable" in logs["features"].read_bytes()
    lines = [orjson.loads(line) for line in logs["ingest"].read_bytes().splitlines()]
    (summary,) = [  # the bar replay's (positioning records are published before it)
        line for line in lines if line["event"] == "source_exhausted" and line["source"] == "file"
    ]
    assert summary["published"] + summary["duplicate"] == clean_bars
    assert summary["dead_lettered"] == 0


LAGGED = ReplayWindow(daily_from="2020-06-01", intraday_from="2021-01-01", end="2021-03-31")


def lagged_replay(
    replicated: Replicated, tmp_path: Path, wait_replicas: int
) -> tuple[subprocess.Popen[bytes], Path]:
    """Freeze the replica (SIGSTOP: a replica that stopped keeping up), then start ingest on a
    quarter of minutes at full speed, more than the loopback socket buffers hold for it."""
    replica = replicated.replica.process
    assert replica is not None
    os.kill(replica.pid, signal.SIGSTOP)
    env = {
        **service_env(tmp_path),
        **replicated.env("ingest"),
        "AEGIS_REPLAY_DAILY_FROM": LAGGED.daily_from or "",
        "AEGIS_REPLAY_INTRADAY_FROM": LAGGED.intraday_from or "",
        "AEGIS_REPLAY_END": LAGGED.end or "",
        "AEGIS_REPLAY_SPEED": "0",
        "AEGIS_REDIS_WAIT_REPLICAS": str(wait_replicas),
        "AEGIS_REDIS_WAIT_TIMEOUT_MS": "200",
    }
    log = tmp_path / "ingest.log"
    return start_service("ingest", env, log), log


def fail_over_to_the_lagging_replica(replicated: Replicated) -> redis.Redis:
    """Kill the primary, let the frozen replica go on, wait for its promotion, and bring the
    old primary back (the sentinels make it the new primary's replica)."""
    replicated.primary.kill()
    assert replicated.replica.process is not None
    os.kill(replicated.replica.process.pid, signal.SIGCONT)
    promoted = wait_promoted(replicated)
    replicated.primary.start()
    return promoted


def test_a_failover_to_a_lagging_replica_loses_no_acknowledged_bar(
    replicated: Replicated, settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """With AEGIS_REDIS_WAIT_REPLICAS=1 a bar counts as published only once the replica holds
    it: with the replica frozen, ingest waits instead of running ahead on the primary alone
    (without the wait it finishes the replay there, and a failover loses what the replica
    never got). The primary is killed and the lagging replica promoted; the old primary comes
    back as its replica, ingest goes on, and every bar of a clean run is on the stream, once."""
    ingest(settings, LAGGED)  # the clean run, on the single test Redis
    clean = [f[b"d"] for _, f in replies.xrange(redis_client, streams.BARS)]
    feeder, log = lagged_replay(replicated, tmp_path, wait_replicas=1)
    try:
        wait_for(lambda: b"replicas acknowledged" in log.read_bytes(), 60, "ingest to wait")
        assert feeder.poll() is None
        assert replicated.primary.client().xlen(streams.BARS) < len(clean)
        promoted = fail_over_to_the_lagging_replica(replicated)
        wait_for(lambda: feeder.poll() is not None, 180, "the replay to end")
        assert feeder.returncode == 0
    finally:
        if replicated.replica.process is not None:
            os.kill(replicated.replica.process.pid, signal.SIGCONT)
        if feeder.poll() is None:
            os.killpg(feeder.pid, signal.SIGTERM)
        feeder.wait(timeout=20)
    assert [f[b"d"] for _, f in replies.xrange(promoted, streams.BARS)] == clean
