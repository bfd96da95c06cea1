"""Engine benchmarks on real snapshots (built from the bundled daily history).

1. Latency: snapshot -> block, per engine, one replica in this process: XADD one snapshot,
   block on XREAD of aegis:blocks until its block arrives (includes Redis round trips,
   decode, compute, the MULTI/EXEC publish+ack). Also the pure compute time.
2. Throughput: blocks/s of one replica vs three (subprocesses, one consumer group), from
   the first publish of N pre-built snapshots until the N-th block.
Models: whatever the registry in --model-dir holds (default: an empty temp dir, i.e. the
labelled heuristic path). Writes the "Engines" section of docs/BENCHMARKS.md.
Usage: python -m bench.bench_engines [--samples 300] [--snapshots 1500] [--model-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import redis

from bench.sections import write_section
from services.buyer.main import BuyerWorker
from services.direction.main import DirectionWorker
from services.seller.main import SellerWorker
from shared.bus import replies, streams
from shared.bus.engine import EngineWorker
from shared.bus.worker import read_health
from shared.config import Settings
from shared.contract.codec import EncodedMessage, encode
from shared.logs import configure_logging
from shared.redis_ops.server import RedisServer
from tests.engines_support import daily_snapshot, history
from tests.ports import free_port

ROOT = Path(__file__).resolve().parent.parent

WORKERS: dict[str, Callable[..., EngineWorker]] = {
    "direction": DirectionWorker,
    "seller": SellerWorker,
    "buyer": BuyerWorker,
}


def encoded_snapshots(count: int) -> list[EncodedMessage]:
    _, features = history()
    return [encode(daily_snapshot(d.date().isoformat())) for d in features.index[400 : 400 + count]]


def latency(settings: Settings, engine: str, entries: list[EncodedMessage]) -> dict[str, float]:
    client = client_for(settings)
    client.flushall()
    worker = WORKERS[engine](settings, consumer="bench")
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    cursor: str | bytes = "$"
    samples = []
    for fields in entries:
        start = time.perf_counter()
        replies.xadd(client, streams.FEATURES, fields)
        while True:
            read = replies.xread(client, streams.BLOCKS, cursor, count=1, block=5000)
            if read:
                cursor = read[-1][0]
                break
        samples.append((time.perf_counter() - start) * 1000)
    worker.stop()
    thread.join()
    ms = np.array(samples[10:])  # first few include model/cache warm-up
    return {
        "p50": float(np.percentile(ms, 50)),
        "p99": float(np.percentile(ms, 99)),
        "max": float(ms.max()),
    }


def compute_ms(settings: Settings, engine: str, count: int) -> float:
    from shared.bus.engine import EngineContext

    worker = WORKERS[engine](settings, consumer="bench-compute")
    _, features = history()
    snaps = [daily_snapshot(d.date().isoformat()) for d in features.index[400 : 400 + count]]
    start = time.perf_counter()
    for snap in snaps:
        ctx: EngineContext = worker.context(snap)
        worker.stamp(ctx, worker.compute(ctx))
    return (time.perf_counter() - start) * 1000 / count


def throughput(
    settings: Settings, engine: str, entries: list[EncodedMessage], replicas: int
) -> float:
    client = client_for(settings)
    client.flushall()
    env = {
        **os.environ,
        "AEGIS_REDIS_URL": settings.redis_url,
        "AEGIS_EMBEDDED_REDIS": "false",
        "AEGIS_MODEL_DIR": str(settings.model_dir),
        "AEGIS_LOG_LEVEL": "WARNING",
        "AEGIS_CLOCK": "event",
        "AEGIS_BLOCK_MS": "100",
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", f"services.{engine}"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(replicas)
    ]
    try:
        while len([h for h in read_health(client) if h["service"] == engine]) < replicas:
            time.sleep(0.05)
        start = time.perf_counter()
        pipe = client.pipeline(transaction=False)
        for fields in entries:
            replies.xadd(pipe, streams.FEATURES, fields)
        pipe.execute()
        while client.xlen(streams.BLOCKS) < len(entries):
            time.sleep(0.01)
        return len(entries) / (time.perf_counter() - start)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=20)


def client_for(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(settings.redis_url)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--snapshots", type=int, default=1500)
    parser.add_argument("--model-dir", type=Path, default=None)
    args = parser.parse_args()
    configure_logging("WARNING", json=True)
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(free_port(), "bench", Path(tmp) / "redis")
        with server:
            model_dir = args.model_dir or Path(tmp) / "models"
            settings = Settings(
                redis_url=server.url,
                redis_port=server.port,
                redis_password="bench",
                embedded_redis=False,
                model_dir=model_dir,
                block_ms=100,
                clock="event",
                log_level="WARNING",
            )
            entries = encoded_snapshots(max(args.samples, args.snapshots))
            rows = []
            for engine in WORKERS:
                lat = latency(settings, engine, entries[: args.samples])
                pure = compute_ms(settings, engine, 200)
                one = throughput(settings, engine, entries[: args.snapshots], 1)
                three = throughput(settings, engine, entries[: args.snapshots], 3)
                rows.append((engine, lat, pure, one, three))
                print(
                    engine,
                    lat,
                    f"compute {pure:.2f} ms",
                    f"1x {one:.0f}/s",
                    f"3x {three:.0f}/s",
                    flush=True,
                )
            models = (
                sorted(p.name for p in model_dir.iterdir() if p.is_dir())
                if model_dir.is_dir()
                else []
            )
    body = [
        f"`python -m bench.bench_engines --samples {args.samples} --snapshots {args.snapshots}` "
        f"on {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}. Models: "
        + (", ".join(models) if models else "none (labelled heuristic path on every value)")
        + ".",
        "Latency = XADD of one daily snapshot until its block is readable on aegis:blocks "
        "(one replica, includes every Redis round trip). Throughput = N pre-built snapshots, "
        "first publish to N-th block, replicas as subprocesses on one consumer group.",
        "",
        "| engine | latency p50 ms | p99 ms | max ms | compute only ms "
        "| blocks/s 1 replica | blocks/s 3 replicas |",
        "|---|---|---|---|---|---|---|",
    ]
    for engine, lat, pure, one, three in rows:
        body.append(
            f"| {engine} | {lat['p50']:.2f} | {lat['p99']:.2f} | {lat['max']:.2f} | "
            f"{pure:.2f} | {one:.0f} | {three:.0f} |"
        )
    write_section("Engines", "\n".join(body))


if __name__ == "__main__":
    main()
