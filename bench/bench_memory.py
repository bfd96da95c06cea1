"""Redis memory of the bus per year of 1-minute data, with the retention settings.

Replays the bundled bars (ingest in this process, the features worker in a thread) into a
real redis-server, then measures MEMORY USAGE of each key family and projects a year
(252 sessions x 375 minutes): capped families at their cap, per-day ones per session.
Usage: python -m bench.bench_memory [--intraday-from DATE] [--end DATE]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path

import redis

from bench.bench_throughput import ListSource
from bench.sections import write_section
from services.features.main import FeaturesWorker
from services.ingest.main import IngestService
from services.ingest.sources.file_replay import FileReplaySource, ReplayWindow
from shared.bus import streams
from shared.config import Settings
from shared.logs import configure_logging
from shared.redis_ops.server import RedisServer
from tests.ports import free_port

ROOT = Path(__file__).resolve().parent.parent

BARS_PER_YEAR = 252 * 375
UNBOUNDED = {
    "digest": "sessions written within the TTL (3 live, a year in a fast replay)",
    "daily ": "grows 1 row per session",
}
MB = 1 << 20


def usage(client: redis.Redis, pattern: str) -> tuple[int, int]:
    """(entries, bytes) over the keys matching ``pattern``."""
    entries = size = 0
    for key in client.scan_iter(match=pattern, count=1000):
        size += client.memory_usage(key, samples=0) or 0
        kind = client.type(key)
        entries += (
            client.xlen(key) if kind == b"stream" else client.hlen(key) if kind == b"hash" else 1
        )
    return entries, size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--intraday-from", default="2021-01-01")
    parser.add_argument("--end", default="2021-06-30")
    args = parser.parse_args()
    configure_logging("WARNING")
    load = open("/proc/loadavg").read().strip()
    with (
        tempfile.TemporaryDirectory() as tmp,
        RedisServer(free_port(), "bench", Path(tmp)) as server,
    ):
        settings = Settings(redis_url=server.url, clock="event", embedded_redis=False, block_ms=100)
        client = server.client()
        window = ReplayWindow(
            daily_from="2020-01-01", intraday_from=args.intraday_from, end=args.end
        )
        events = list(FileReplaySource(ROOT / "data", window).events())
        worker = FeaturesWorker(settings, "bench")
        thread = threading.Thread(target=worker.run, kwargs={"max_idle_reads": 20})
        thread.start()
        counts = IngestService(settings, ListSource(events), client).run()
        thread.join()
        minutes = sum(1 for e in events if getattr(e, "interval", "") == "1m")
        families = {
            "bars stream (acknowledged entries kept up to AEGIS_STREAM_MAXLEN)": (
                streams.BARS,
                settings.stream_maxlen,
            ),
            "snapshots stream (same rule)": (streams.FEATURES, settings.stream_maxlen),
            "blocks stream (AEGIS_BLOCKS_MAXLEN)": (streams.BLOCKS, settings.blocks_maxlen),
            "digests (per day, TTL AEGIS_DIGEST_TTL_S)": ("aegis:digests:*", None),
            "daily snapshots hash (one per session)": (streams.DAILY_FEATURES, None),
            "features checkpoint": (streams.checkpoint("features"), None),
        }
        rows = []
        for name, (pattern, cap) in families.items():
            entries, size = usage(client, pattern)
            per_entry = size / entries if entries else 0
            if cap is not None:
                year = per_entry * min(cap, BARS_PER_YEAR)
                bound = per_entry * cap
            elif "digests" in name:  # a year replayed within the TTL keeps all of them
                year = size / max(1, minutes / 375) * 252
                bound = None
            elif "daily" in name:
                year = per_entry * 252
                bound = None
            else:
                year = bound = size
            rows.append((name, entries, size, per_entry, year, bound))
        result = {
            "minutes": minutes,
            "published": counts["published"],
            "used_memory_mb": round(client.info("memory")["used_memory"] / MB, 1),
            "load_at_start": load,
        }
    print(json.dumps(result, indent=2))
    lines = [
        f"`.venv/bin/python -m bench.bench_memory --intraday-from {args.intraday_from} --end "
        f"{args.end}` on {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}; /proc/loadavg at "
        f"start `{load}` (host busy with other engineers' work: memory is not load-sensitive). "
        f"{result['published']:,} bars published ({minutes:,} minutes), features in a thread, "
        "no engines (the snapshot stream is measured per entry). "
        "Redis `used_memory` after the run: "
        f"{result['used_memory_mb']} MB. Projection for a year of 1-minute data "
        f"({BARS_PER_YEAR:,} minutes):",
        "",
        "| key family | entries now | MB now | bytes/entry | MB for a year | bound MB |",
        "|---|---|---|---|---|---|",
    ]
    for name, entries, size, per_entry, year, bound in rows:
        bound_text = f"{bound / MB:,.1f}" if bound is not None else UNBOUNDED.get(name[:6], "")
        lines.append(
            f"| {name} | {entries:,} | {size / MB:,.2f} | {per_entry:,.0f} | {year / MB:,.2f} "
            f"| {bound_text} |"
        )
    write_section("Memory", "\n".join(lines))


if __name__ == "__main__":
    main()
