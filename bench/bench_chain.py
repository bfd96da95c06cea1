"""Chain benchmark: a new chain snapshot (3 expiries x ~150 strikes) -> seller block.

History: the 411 real snapshots of data/nifty_option_chain_intraday_*.csv.gz are on
aegis:chains first (the ATM IV percentile's history). Each sample then publishes three new
chains (the last real snapshot of each expiry, relabelled to the next three weekly expiries,
padded with listed-but-untraded strikes at 50-point steps to 150 strikes each) and one feature
snapshot, and times from the first chain XADD until the seller block is readable (one
replica, every Redis round trip, chain decode, analytics, block publish). Also the pure
``ChainViews.view`` + ``compute_seller`` time. Writes the "Chain" section of BENCHMARKS.md.
Usage: python bench/bench_chain.py [--samples 300]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from bench.bench_engines import client_for, free_port
from bench.sections import write_section
from services.ingest.sources.chain_file import ChainFileSource
from services.seller.compute import compute_seller
from services.seller.main import SellerWorker
from shared import streams
from shared.calendar import daily_open_time, to_date
from shared.codec import encode
from shared.config import Settings
from shared.logs import configure_logging
from shared.redis_server import RedisServer
from shared.schemas import FeatureSnapshot, OptionChain, OptionQuote
from tests.engines_support import daily_snapshot

ROOT = Path(__file__).resolve().parent.parent

CHAIN_FILE = ROOT / "data" / "nifty_option_chain_intraday_2026-01-22_2026-02-05.csv.gz"
SESSION, EXPIRIES = "2026-02-09", ("2026-02-10", "2026-02-17", "2026-02-24")
STRIKES = 150


def real_chains() -> list[OptionChain]:
    return [e for e in ChainFileSource(CHAIN_FILE).events() if isinstance(e, OptionChain)]


def padded(chain: OptionChain, expiry: str, taken: int) -> OptionChain:
    quotes = list(chain.quotes)
    low, high = quotes[0].strike, quotes[-1].strike
    while len(quotes) < STRIKES:
        high += 50
        quotes.append(OptionQuote(strike=high))
        if len(quotes) < STRIKES:
            low -= 50
            quotes.insert(0, OptionQuote(strike=low))
    return chain.model_copy(
        update={"expiry": expiry, "snapshot_time": taken, "quotes": tuple(quotes)}
    )


def samples_of(
    history: list[OptionChain], count: int
) -> list[tuple[list[OptionChain], FeatureSnapshot]]:
    last = {c.expiry: c for c in history}
    templates = [last[e] for e in sorted(last)]
    base = daily_snapshot("2025-06-27")
    start = daily_open_time(to_date(SESSION)) + 600
    out = []
    for i in range(count):
        taken = start + 60 * i
        chains = [padded(t, e, taken) for t, e in zip(templates, EXPIRIES, strict=True)]
        snap = base.model_copy(
            update={"as_of": taken + 30, "session_date": SESSION, "next_expiry": EXPIRIES[0]}
        )
        out.append((chains, snap))
    return out


def latency(settings: Settings, history: list[OptionChain], count: int) -> dict[str, float]:
    client = client_for(settings)
    client.flushall()
    pipe = client.pipeline(transaction=False)
    for chain in history:
        pipe.xadd(streams.CHAINS, encode(chain))
    pipe.execute()
    worker = SellerWorker(settings, consumer="bench")
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    cursor, ms = "$", []
    for chains, snap in samples_of(history, count):
        encoded = [encode(c) for c in chains]
        start = time.perf_counter()
        for fields in encoded:
            client.xadd(streams.CHAINS, fields)
        client.xadd(streams.FEATURES, encode(snap))
        while not (reply := client.xread({streams.BLOCKS: cursor}, block=5000, count=1)):
            pass
        ms.append((time.perf_counter() - start) * 1000)
        cursor = reply[0][1][-1][0]
    worker.stop()
    thread.join()
    arr = np.array(ms[10:])  # the first samples fill the ATM IV cache of the history
    return {
        "p50": float(np.percentile(arr, 50)),
        "p99": float(np.percentile(arr, 99)),
        "max": float(arr.max()),
        "first": ms[0],
    }


def compute_only(settings: Settings, history: list[OptionChain], count: int) -> float:
    client = client_for(settings)
    worker = SellerWorker(settings, consumer="bench-compute")
    snaps = [snap for _, snap in samples_of(history, count)]
    worker.chain_views.view(snaps[0])  # fills the ATM IV cache once
    start = time.perf_counter()
    for snap in snaps:
        ctx = worker.context(snap)
        newest = worker.chains.for_snapshot(snap)
        data = compute_seller(ctx, newest, worker.chain_views.view(snap, refresh=False))
        assert data["chain"]["status"] == "fresh", data["chain"]
    client.close()
    return (time.perf_counter() - start) * 1000 / count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    configure_logging("WARNING", json=True)
    load = Path("/proc/loadavg").read_text().split()[:3]
    start = time.perf_counter()
    sum(range(10**6))  # a fixed pure-Python loop: how slow the host is right now
    reference_ms = (time.perf_counter() - start) * 1000
    history = real_chains()
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(free_port(), "bench", Path(tmp) / "redis")
        with server:
            settings = Settings(
                redis_url=server.url,
                redis_port=server.port,
                redis_password="bench",
                embedded_redis=False,
                model_dir=Path(tmp) / "models",
                block_ms=100,
                clock="event",
                log_level="WARNING",
            )
            lat = latency(settings, history, args.samples)
            pure = compute_only(settings, history, args.samples)
    print(lat, f"compute {pure:.2f} ms", flush=True)
    body = "\n".join(
        [
            f"`.venv/bin/python bench/bench_chain.py --samples {args.samples}` on "
            f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
            f"load average at start {' '.join(load)} (host busy: other engineers' tests and "
            "training share it; rerun on a quiet box).",
            "A sample = 3 new chains (150 strikes each, 3 weekly expiries) + 1 feature snapshot "
            "XADDed, until the seller block is readable (one replica, models absent: labelled "
            f"heuristics elsewhere in the block). History: {len(history)} real snapshots. "
            f"Host speed: `sum(range(10**6))` took {reference_ms:.0f} ms at start (compare on "
            "the rerun). The first sample computes the ATM IV of every kept snapshot once.",
            "",
            "| p50 ms | p99 ms | max ms | first sample ms (ATM IV cache fill) | compute only ms |",
            "|---|---|---|---|---|",
            f"| {lat['p50']:.2f} | {lat['p99']:.2f} | {lat['max']:.2f} | {lat['first']:.1f} | "
            f"{pure:.2f} |",
        ]
    )
    write_section("Chain", body)


if __name__ == "__main__":
    main()
