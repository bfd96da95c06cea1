"""One engine replica's own speed on real intraday snapshots, batched vs one at a time.

The features state builds the snapshots of --intraday-from..--end from the bundled files
(daily warm-up from --daily-from) and stores each daily snapshot's sequence where the
features worker does; the snapshots go on aegis:features of a real redis-server. Each
engine then consumes them in this process through the real worker loop (``_process``:
decode, compute, stamp, publish + acknowledge in one MULTI/EXEC) in read batches of
--batch entries, and again one entry per batch (the live case). Models: --model-dir.

Usage: python -m bench.bench_engine_batch --model-dir DIR [--batch 256] [--limit 5000]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import tempfile
import time
from pathlib import Path

from bench.sections import write_section
from services.buyer.main import BuyerWorker
from services.direction.main import DirectionWorker
from services.features.state import FeatureState
from services.ingest.sources.file_replay import FileReplaySource, ReplayWindow
from services.seller.main import SellerWorker
from shared.bus import replies, streams
from shared.config import Settings
from shared.contract.codec import encode, pack
from shared.contract.schemas import Bar, FeatureSnapshot
from shared.logs import configure_logging
from shared.redis_ops.server import RedisServer
from tests.ports import free_port

ROOT = Path(__file__).resolve().parent.parent

WORKERS = (DirectionWorker, SellerWorker, BuyerWorker)


def build_snapshots(args: argparse.Namespace) -> list[FeatureSnapshot]:
    state, out = FeatureState(), []
    window = ReplayWindow(args.daily_from, args.intraday_from, args.end)
    for event in FileReplaySource(ROOT / "data", window).events():
        if isinstance(event, Bar):
            out.extend(state.apply(event, 0))
    return out


def run(worker_cls: type, settings: Settings, entries: list, batch: int) -> dict[str, float]:
    worker = worker_cls(settings, consumer=f"bench-{batch}")
    worker.group = f"{worker.service}-bench-{batch}"  # a fresh group: every entry again
    worker._ensure_group()
    gc.freeze()  # as StreamWorker.run does once started
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(entries), batch):
        worker._process(entries[i : i + batch], redelivered=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "snapshots": len(entries),
        "per_s": round(len(entries) / wall),
        "per_cpu_s": round(len(entries) / cpu),
        "us_per_snapshot": round(wall / len(entries) * 1e6),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--daily-from", default="2020-01-01")
    parser.add_argument("--intraday-from", default="2021-01-01")
    parser.add_argument("--end", default="2021-02-28")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--limit", type=int, default=5000, help="intraday snapshots timed")
    args = parser.parse_args()
    configure_logging("WARNING")
    load_at_start = Path("/proc/loadavg").read_text().strip()
    snapshots = build_snapshots(args)
    intraday = [s for s in snapshots if s.kind == "intraday"][-args.limit :]
    results: dict[str, dict[str, dict[str, float]]] = {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        RedisServer(free_port(), "bench", Path(tmp), aof=True) as server,
    ):
        settings = Settings(
            redis_url=server.url,
            embedded_redis=False,
            clock="event",
            model_dir=args.model_dir,
            log_level="WARNING",
        )
        client = server.client()
        for snap in snapshots:
            if snap.kind == "daily":
                client.hset(streams.DAILY_FEATURES, snap.session_date, pack(snap.model_dump()))
        pipe = client.pipeline(transaction=False)
        for snap in intraday:
            replies.xadd(pipe, streams.FEATURES, encode(snap))
        pipe.execute()
        entries = replies.xrange(client, streams.FEATURES)
        for worker_cls in WORKERS:
            results[worker_cls.engine] = {
                f"batch {args.batch}": run(worker_cls, settings, entries, args.batch),
                "batch 1": run(worker_cls, settings, entries[:1000], 1),
            }
    print(json.dumps(results, indent=2))
    write_section("Engine batches", report(results, args, load_at_start))


def report(results: dict, args: argparse.Namespace, load: str) -> str:
    rows = "\n".join(
        f"| {engine} | {name} | {r['snapshots']:,} | **{r['per_s']:,}** | {r['per_cpu_s']:,} "
        f"| {r['us_per_snapshot']} |"
        for engine, by_batch in results.items()
        for name, r in by_batch.items()
    )
    return (
        f"`.venv/bin/python -m bench.bench_engine_batch --model-dir DIR --batch {args.batch} "
        f"--limit {args.limit}` on {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}, "
        f"`/proc/loadavg` at start: {load}. One replica of each engine in the bench process, "
        "through the real worker loop (decode, compute, stamp, publish + acknowledge in one "
        "MULTI/EXEC) on a real redis-server, trained models, real intraday snapshots of "
        f"{args.intraday_from}..{args.end} built by the features state (daily sequences stored "
        "as the features worker does). CPU = this process only (Redis excluded).\n\n"
        "| engine | read batch | snapshots | snapshots/s | per CPU s | µs per snapshot |\n"
        "|---|---|---|---|---|---|\n"
        f"{rows}"
    )


if __name__ == "__main__":
    main()
