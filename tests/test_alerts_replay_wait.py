"""While a replay run as fast as possible pours blocks in, the alerts service reads none and
catches up once they stop, with exactly the alerts it gives when reading as they come; live
or paced it reads at once (services.alerts.flood). A real Redis, the worker in-process."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import orjson
import pytest
import redis

from services.alerts.flood import ReplayFlood, unpaced_replay
from services.alerts.main import AlertsWorker
from shared.bus import replies, streams
from shared.bus.publish import Bus
from shared.bus.retention import group_lag
from shared.bus.worker import read_health
from shared.config import Settings
from shared.contract.schemas import SignalBlock
from shared.market.clock import RunInfo
from tests.alerts_support import RULES, scenario


def run_record(mode: str = "replay", paced: bool = False, finished: bool = False) -> bytes:
    info = RunInfo(
        mode="live" if mode == "live" else "replay",
        source="yfinance" if mode == "live" else "file",
        speed=60.0 if paced else 0.0,
        paced=paced,
        stream_time_s=1_751_261_460,
        stream_at_ms=1_796_000_000_000,
        finished=finished,
    )
    return orjson.dumps(info.to_json())


def publish(client: redis.Redis, settings: Settings, blocks: list[SignalBlock]) -> None:
    bus = Bus(client, settings)
    pipe = client.pipeline(transaction=True)
    for block in blocks:
        bus.stage(pipe, block)
    pipe.execute()


def entries_read(client: redis.Redis) -> int:
    """Blocks delivered to the alerts' group (none before the group exists)."""
    groups = [g for g in client.xinfo_groups(streams.BLOCKS) if g["name"] == b"alerts"]
    return int(groups[0]["entries-read"] or 0) if groups else 0


def alert_records(client: redis.Redis) -> list[tuple[str, str, str, int]]:
    records = [orjson.loads(f[b"d"]) for _, f in replies.xrange(client, streams.ALERTS)]
    return [(r["rule"], r["from"], r["to"], r["as_of"]) for r in records]


def worker_for(settings: Settings, tmp_path: Path) -> AlertsWorker:
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    worker = AlertsWorker(settings.model_copy(update={"alerts_rules": rules}), "alerts-wait")
    assert worker.flood is not None  # on by default
    worker.flood.every_s = 0.0  # look at every step
    worker._ensure_group()  # as run() does first
    return worker


def test_an_unpaced_replay_is_waited_out_and_gives_the_same_alerts(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    blocks, expected = scenario()
    redis_client.set(streams.RUN, run_record(finished=True))
    publish(redis_client, settings, blocks[:6])
    worker = worker_for(settings, tmp_path)

    assert worker._step() is None  # blocks arrived since it last looked: it waits
    assert entries_read(redis_client) == 0
    (health,) = [h for h in read_health(redis_client) if h["service"] == "alerts"]
    assert health["waiting_for_replay"] is True
    publish(redis_client, settings, blocks[6:])
    assert worker._step() is None  # still arriving
    assert entries_read(redis_client) == 0

    worker.run(max_idle_reads=2)  # nothing new since the last look: it reads everything
    assert worker.stats["processed"] == len(blocks) and worker.stats["replay_waits"] == 1
    assert alert_records(redis_client) == expected
    assert worker.health_details()["waiting_for_replay"] is False


@pytest.mark.parametrize("mode", ["live", "paced"])
def test_live_or_paced_blocks_are_read_as_they_come(
    mode: str, settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    blocks, expected = scenario()
    redis_client.set(streams.RUN, run_record(mode, paced=mode == "paced"))
    publish(redis_client, settings, blocks)
    worker = worker_for(settings, tmp_path)
    assert worker._step() is True  # read at once
    worker.run(max_idle_reads=2)
    assert worker.stats["replay_waits"] == 0
    assert alert_records(redis_client) == expected


def test_the_flood_is_a_replay_run_as_fast_as_possible_with_blocks_arriving(
    settings: Settings, redis_client: redis.Redis
) -> None:
    blocks, _ = scenario()
    now = [0.0]
    flood = ReplayFlood(redis_client, max_backlog=100, every_s=0.5, monotonic=lambda: now[0])
    redis_client.set(streams.RUN, run_record())
    redis_client.xgroup_create(streams.BLOCKS, "alerts", id="0", mkstream=True)
    assert flood.on() is False  # no block yet
    publish(redis_client, settings, blocks[:1])
    assert flood.on() is False  # looked less than every_s ago: the last answer
    now[0] = 0.5
    assert flood.on() is True
    now[0] = 1.0
    assert flood.on() is False  # none since
    publish(redis_client, settings, blocks[1:2])
    redis_client.delete(streams.RUN)
    now[0] = 1.5
    assert flood.on() is False  # no run record: not a replay it knows of


def test_a_backlog_at_half_the_stream_cap_is_read_through_the_flood(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """The block stream is trimmed at AEGIS_BLOCKS_MAXLEN whether read or not: a wait that
    outlasted it would lose the oldest unread blocks. Half the cap unread, the service reads
    on through the flood, with the same alerts."""
    blocks, expected = scenario()
    capped = settings.model_copy(update={"blocks_maxlen": 20})  # wait below 10 unread
    redis_client.set(streams.RUN, run_record())
    publish(redis_client, capped, blocks[:3])
    worker = worker_for(capped, tmp_path)
    assert worker.flood is not None and worker.flood.max_backlog == 10

    assert worker._step() is None  # 3 unread: it waits
    assert worker.flood.backlog == 3 and entries_read(redis_client) == 0
    publish(redis_client, capped, blocks[3:])
    assert worker._step() is True  # 12 unread, the replay still pouring in: it reads
    assert worker.flood.backlog == len(blocks) and entries_read(redis_client) > 0
    worker.run(max_idle_reads=2)
    assert alert_records(redis_client) == expected


def test_blocks_trimmed_before_they_were_read_are_reported(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """Live (no wait), a reader held up past the block stream's cap: the blocks it never read
    are gone, and its health says so (any group reader of a capped stream)."""
    blocks, _ = scenario()
    capped = settings.model_copy(update={"blocks_maxlen": 20})
    redis_client.set(streams.RUN, run_record("live"))
    worker = worker_for(capped, tmp_path)
    publish(redis_client, capped, blocks)
    assert worker._step() is True  # read all 12
    worker._write_health(force=True)
    assert "trimmed_unread" not in worker.stats
    publish(redis_client, capped, blocks * 25)  # 300 more: approximate trimming drops nodes
    kept = redis_client.xlen(streams.BLOCKS)
    assert kept < 300
    worker._write_health(force=True)
    assert worker.stats["trimmed_unread"] == 300 - kept
    (health,) = [h for h in read_health(redis_client) if h["service"] == "alerts"]
    assert health["status"] == "degraded"
    assert any(
        f"at least {300 - kept} entries of aegis:blocks were trimmed" in r
        for r in health["degraded_reasons"]
    )


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling policies")
def test_a_reader_on_idle_cpu_a_quarter_of_the_cap_behind_leaves_idle_cpu(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """On idle CPU (a replay's alerts and history), a block reader starved by the flood would
    lose blocks to the cap: a quarter of it behind, its thread goes back to normal scheduling
    (below that, it stays idle). In a thread of its own: the policy is per thread."""
    blocks, _ = scenario()
    capped = settings.model_copy(update={"blocks_maxlen": 40})  # a quarter: 10 unread
    redis_client.set(streams.RUN, run_record())
    worker = worker_for(capped, tmp_path)
    policies: list[int] = []

    def report_after(count: int) -> None:
        publish(redis_client, capped, blocks[:count])
        worker._write_health(force=True)
        policies.append(os.sched_getscheduler(0))

    def reader() -> None:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        report_after(6)  # 6 unread
        report_after(6)  # 12 unread
        report_after(0)  # stays out

    thread = threading.Thread(target=reader)
    thread.start()
    thread.join(timeout=30)
    assert policies == [os.SCHED_IDLE, os.SCHED_OTHER, os.SCHED_OTHER]
    assert worker.stats["left_idle_cpu"] is True


def test_an_unknown_backlog_is_not_waited_on(redis_client: redis.Redis) -> None:
    """No group lag to be had (no group yet; Redis before 7; entries deleted in between):
    read, as without the wait."""
    flood = ReplayFlood(redis_client, max_backlog=100, every_s=0.0)
    redis_client.set(streams.RUN, run_record())
    redis_client.xadd(streams.BLOCKS, {"x": "1"})
    assert flood.on() is False and flood.backlog is None
    assert group_lag([{"name": b"alerts", "lag": None}], "alerts") is None
    assert group_lag([{"name": b"alerts", "lag": 7}], "alerts") == 7
    assert group_lag(redis.ResponseError("no such key"), "alerts") is None


def test_only_a_replay_record_not_paced_counts_as_unpaced() -> None:
    assert unpaced_replay(run_record()) is True
    assert unpaced_replay(run_record(finished=True)) is True  # the engines still draining
    assert unpaced_replay(run_record(paced=True)) is False
    assert unpaced_replay(run_record("live")) is False
    assert unpaced_replay(None) is False
    assert unpaced_replay(b"{not json") is False
    assert unpaced_replay(b'{"mode": "replay"}') is False  # malformed: read, do not wait
