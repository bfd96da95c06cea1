"""The cost of durable acknowledgement (AEGIS_REDIS_WAIT_REPLICAS=1: WAIT after each write).

A primary and its replica on loopback (real redis-server processes, AOF everysec on the
primary). For each setting, alternated: the year of bundled bars published by ingest as fast
as possible (pre-parsed, its batches as in a replay), then 300 bars published one call each
(the live path: one bar a minute, so one WAIT per bar). Between runs the primary is flushed
and the replica waited for.
Usage: python -m bench.bench_durable [--rounds 2] [--intraday-from DATE] [--end DATE]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.bench_throughput import ListSource
from bench.sections import write_section
from services.ingest.main import IngestService
from services.ingest.sources.file_replay import FileReplaySource, ReplayWindow
from shared.bus.publish import Bus
from shared.config import Settings
from shared.contract.schemas import Bar
from shared.logs import configure_logging
from shared.redis_ops.server import RedisServer
from tests.ports import free_port
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent
LIVE_BARS = 300


def synced(primary: RedisServer, replica: RedisServer) -> bool:
    offset = primary.client().info("replication")["master_repl_offset"]
    info = replica.client().info("replication")
    return info.get("master_link_status") == "up" and info["slave_repl_offset"] >= offset


def run_once(
    primary: RedisServer, replica: RedisServer, events: list, wait: int
) -> dict[str, float]:
    client = primary.client()
    client.flushall()
    wait_for(lambda: synced(primary, replica), 30, "the replica to catch up")
    settings = Settings(
        redis_url=primary.url,
        replay_speed=0,
        clock="event",
        embedded_redis=False,
        log_level="WARNING",
        redis_wait_replicas=wait,
    )
    started = time.perf_counter()
    counts = IngestService(settings, ListSource(events), client).run()
    replay_s = time.perf_counter() - started
    client.flushall()
    wait_for(lambda: synced(primary, replica), 30, "the replica to catch up")
    bus = Bus(client, settings)
    live = [e for e in events if isinstance(e, Bar) and e.interval == "1m"][-LIVE_BARS:]
    times = []
    for bar in live:
        t0 = time.perf_counter()
        bus.publish_bars([bar])
        times.append((time.perf_counter() - t0) * 1000)
    p50, p99 = np.percentile(times, [50, 99])
    return {
        "bars": counts["published"],
        "replay_s": round(replay_s, 2),
        "live_p50_ms": round(float(p50), 3),
        "live_p99_ms": round(float(p99), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--intraday-from", default="2021-01-01")
    parser.add_argument("--end", default="2021-12-31")
    args = parser.parse_args()
    configure_logging("WARNING")
    load = open("/proc/loadavg").read().strip()
    window = ReplayWindow(daily_from="2020-01-01", intraday_from=args.intraday_from, end=args.end)
    events = list(FileReplaySource(ROOT / "data", window).events())
    with tempfile.TemporaryDirectory() as tmp:
        primary = RedisServer(free_port(), "", Path(tmp) / "primary", aof=True).start()
        replica = primary.replica(free_port(), Path(tmp) / "replica").start()
        try:
            runs = [
                {"wait_replicas": wait, **run_once(primary, replica, events, wait)}
                for _ in range(args.rounds)
                for wait in (0, 1)
            ]
        finally:
            replica.stop()
            primary.stop()
    result = {"load_average_at_start": load, "cores": os.cpu_count(), "runs": runs}
    print(json.dumps(result, indent=2))
    write_section("Durable acknowledgement", report(result, args))


def report(result: dict, args: argparse.Namespace) -> str:
    rows = "\n".join(
        f"| {r['wait_replicas']} | {r['bars']:,} | {r['replay_s']} | {r['live_p50_ms']} "
        f"| {r['live_p99_ms']} |"
        for r in result["runs"]
    )
    return (
        f"`python -m bench.bench_durable` on {result['cores']} cores, "
        f"{time.strftime('%Y-%m-%d')}, `/proc/loadavg` at start: "
        f"{result['load_average_at_start']}. A primary (AOF everysec) and its replica on "
        f"loopback; ingest publishes the bundled bars (1-minute {args.intraday_from}.."
        f"{args.end}, daily from 2020) as fast as it can, then {LIVE_BARS} minute bars one "
        "call each (the live path), with AEGIS_REDIS_WAIT_REPLICAS 0 (acknowledged by the "
        "primary) and 1 (WAIT until the replica holds the write), alternated.\n\n"
        "| wait replicas | bars | replay s | live publish p50 ms | live publish p99 ms |\n"
        "|---|---|---|---|---|\n"
        f"{rows}\n\n"
        "On the live path every hop that writes (ingest, features, the engines) waits once "
        "per batch, so a bar reaches the browser about three of these differences later."
    )


if __name__ == "__main__":
    main()
