"""Throughput of ingest → features, as fast as possible, on the bundled 1-minute data.

Runs a real redis-server, the features worker in its own process, and ingest in this one;
bars/s = bars published / time from the first publish until the features worker has
acknowledged the last bar (CSV parsing excluded).
Usage: python -m bench.bench_throughput [--intraday-from DATE] [--end DATE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from bench.sections import write_section
from services.ingest.main import IngestService
from services.ingest.sources.base import RejectedInput, SourceEvent
from services.ingest.sources.file_replay import FileReplaySource, ReplayWindow
from shared.bus import streams
from shared.config import Settings
from shared.logs import configure_logging
from shared.redis_ops.server import RedisServer
from tests.ports import free_port

ROOT = Path(__file__).resolve().parent.parent


class ListSource:
    """Pre-parsed events, so the benchmark times the bus and the workers, not CSV parsing."""

    name = "bench"

    def __init__(self, events: Sequence[SourceEvent | RejectedInput]) -> None:
        self._events = events

    @property
    def status(self) -> dict[str, object]:
        return {}

    def events(self) -> Iterator[SourceEvent | RejectedInput]:
        return iter(self._events)

    def close(self) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--intraday-from", default="2021-01-01")
    parser.add_argument("--end", default="2021-12-31")
    args = parser.parse_args()
    configure_logging("WARNING")
    load_at_start = os.getloadavg()[0]
    with (
        tempfile.TemporaryDirectory() as tmp,
        RedisServer(free_port(), "bench", Path(tmp), aof=True) as server,
    ):
        settings = Settings(
            redis_url=server.url,
            replay_speed=0,
            clock="event",
            embedded_redis=False,
            log_level="WARNING",
        )
        env = {
            **os.environ,
            "AEGIS_REDIS_URL": server.url,
            "AEGIS_CLOCK": "event",
            "AEGIS_LOG_LEVEL": "WARNING",
            "AEGIS_READ_COUNT": "512",
        }
        worker = subprocess.Popen([sys.executable, "-m", "services.features"], env=env, cwd=ROOT)
        client = server.client()
        window = ReplayWindow(
            daily_from="2020-01-01", intraday_from=args.intraday_from, end=args.end
        )
        events = list(FileReplaySource(ROOT / "data", window).events())  # parse files first
        source = ListSource(events)
        started = time.perf_counter()
        counts = IngestService(settings, source, client).run()
        ingest_done = time.perf_counter()
        while True:
            groups = {g["name"].decode(): g for g in client.xinfo_groups(streams.BARS)}
            group = groups.get("features")
            if group and group["pending"] == 0 and group.get("lag") == 0:
                break
            time.sleep(0.01)
        finished = time.perf_counter()
        worker.terminate()
        worker.wait()
        bars = counts["published"]
        result = {
            "bars": bars,
            "feature_snapshots": client.xlen(streams.FEATURES),
            "ingest_seconds": round(ingest_done - started, 2),
            "end_to_end_seconds": round(finished - started, 2),
            "ingest_bars_per_s": round(bars / (ingest_done - started)),
            "ingest_to_features_bars_per_s": round(bars / (finished - started)),
            "cores": os.cpu_count(),
            "load_average_at_start": round(load_at_start, 1),
        }
        print(json.dumps(result, indent=2))
        write_section("Throughput", report(result, args))


def report(result: dict, args: argparse.Namespace) -> str:
    return (
        f"`python -m bench.bench_throughput` on {result['cores']} cores, "
        f"{time.strftime('%Y-%m-%d')}, "
        f"load average at start {result['load_average_at_start']}. Bundled NIFTY 50 "
        f"1-minute bars {args.intraday_from}..{args.end} with NIFTY 50 and India VIX daily bars "
        "from 2020 (warm-up included), "
        "pre-parsed; real redis-server (AOF everysec); ingest in this process, one features "
        "worker process (ordered, so one replica). Time runs from the first publish until the "
        "features group has acknowledged the last bar.\n\n"
        "| bars | feature snapshots | ingest bars/s | ingest → features bars/s | seconds |\n"
        "|---|---|---|---|---|\n"
        f"| {result['bars']:,} | {result['feature_snapshots']:,} | {result['ingest_bars_per_s']:,} "
        f"| **{result['ingest_to_features_bars_per_s']:,}** | {result['end_to_end_seconds']} |\n\n"
        "Floor: 10,000 bars/s ingest → features."
    )


if __name__ == "__main__":
    main()
