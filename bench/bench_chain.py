"""Chain benchmark: a new chain snapshot (3 expiries x ~150 strikes) -> seller block.

History: the 411 real snapshots of data/nifty_option_chain_intraday_*.csv.gz are on
aegis:chains first (the ATM IV percentile's history). Each sample then publishes three new
chains (the last real snapshot of each expiry, relabelled to the next three weekly expiries,
padded with listed-but-untraded strikes at 50-point steps to 150 strikes each) and one feature
snapshot, and times from the first chain XADD until the seller block is readable (one
replica, every Redis round trip, chain decode, analytics, block publish).

The seller runs as in a deployment: its own process (``python -m services.seller``), so the
timing client and the worker do not share a GIL. ``--worker thread`` runs it in a thread of
this process instead (how this bench measured before 2026-11-29; the client then waits for
the GIL whenever the worker is in Python code). Besides wall time, the worker's CPU time per
sample (from /proc/PID/stat of its process, or this process's CPU time for a thread) is
reported: load on the host disturbs it much less. Also, in this process: the pure
``ChainViews.view`` + ``compute_seller`` time, and the view + ATM IV percentile with the
chain cache at its bound (12 expiries x 2,000 snapshots). Writes the "Chain" section of
BENCHMARKS.md (``--no-write``: print only).
Usage: python -m bench.bench_chain [--samples 300] [--worker process|thread] [--no-write]
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import numpy as np

from bench.bench_engines import client_for
from bench.sections import write_section
from services.ingest.sources.chain_file import ChainFileSource
from services.seller.compute import compute_seller
from services.seller.main import SellerWorker
from shared.bus import replies, streams
from shared.bus.engine import ChainCache
from shared.bus.worker import read_health
from shared.config import Settings
from shared.contract.codec import encode
from shared.contract.document.chain import ChainFresh
from shared.contract.schemas import FeatureSnapshot, OptionChain, OptionQuote
from shared.logs import configure_logging
from shared.market.calendar import daily_open_time, to_date
from shared.market.chain_view import ChainViews
from shared.redis_ops.server import RedisServer
from shared.signals.chain import percentile_rank
from tests.engines_support import daily_snapshot
from tests.ports import free_port

ROOT = Path(__file__).resolve().parent.parent

CHAIN_FILE = ROOT / "data" / "nifty_option_chain_intraday_2026-01-22_2026-02-05.csv.gz"
SESSION, EXPIRIES = "2026-02-09", ("2026-02-10", "2026-02-17", "2026-02-24")
STRIKES = 150
WARMUP = 10  # samples left out: the first one fills the ATM IV cache of the history


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


def worker_env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "AEGIS_REDIS_URL": settings.redis_url,
        "AEGIS_EMBEDDED_REDIS": "false",
        "AEGIS_MODEL_DIR": str(settings.model_dir),
        "AEGIS_LOG_LEVEL": "WARNING",
        "AEGIS_CLOCK": "event",
        "AEGIS_BLOCK_MS": str(settings.block_ms),
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class SellerRun:
    """One seller replica for the bench: its own process, or a thread of this one."""

    def __init__(self, settings: Settings, mode: str) -> None:
        self.settings, self.mode = settings, mode

    def __enter__(self) -> SellerRun:
        if self.mode == "process":
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "services.seller"],
                cwd=ROOT,
                env=worker_env(self.settings),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            client = client_for(self.settings)
            while not any(h["service"] == "seller" for h in read_health(client)):
                if self.proc.poll() is not None:
                    raise RuntimeError(f"seller exited with {self.proc.returncode}")
                time.sleep(0.05)  # a separate process: nothing in this one to wait on
            client.close()
        else:
            self.worker = SellerWorker(self.settings, consumer="bench")
            self.thread = threading.Thread(target=self.worker.run, daemon=True)
            self.thread.start()
        return self

    def check(self) -> None:
        """Raise if the seller is gone (a bench waiting for its block would wait forever)."""
        if self.mode == "process" and self.proc.poll() is not None:
            raise RuntimeError(f"seller exited with {self.proc.returncode}")
        if self.mode == "thread" and not self.thread.is_alive():
            raise RuntimeError("seller thread ended")

    def cpu(self) -> float:
        if self.mode == "process":
            return cpu_seconds(self.proc.pid)
        return time.process_time()  # the worker's and this client's threads together

    def __exit__(self, *exc: object) -> None:
        if self.mode == "process":
            self.proc.terminate()
            self.proc.wait(timeout=20)
        else:
            self.worker.stop()
            self.thread.join()


def latency(
    settings: Settings, history: list[OptionChain], count: int, mode: str
) -> dict[str, float]:
    client = client_for(settings)
    client.flushall()
    pipe = client.pipeline(transaction=False)
    for chain in history:
        replies.xadd(pipe, streams.CHAINS, encode(chain))
    pipe.execute()
    cursor: str | bytes = "$"
    ms = []
    samples = [
        ([encode(c) for c in chains], encode(snap)) for chains, snap in samples_of(history, count)
    ]
    # The client's own prepared messages leave its collector's scans: a full collection
    # walking them inside a timed sample would be the client's pause, not the seller's.
    gc.freeze()
    with SellerRun(settings, mode) as seller:
        for i, (encoded, snap_fields) in enumerate(samples):
            if i == WARMUP:
                cpu_start = seller.cpu()
            start = time.perf_counter()
            for fields in encoded:
                replies.xadd(client, streams.CHAINS, fields)
            replies.xadd(client, streams.FEATURES, snap_fields)
            while not (read := replies.xread(client, streams.BLOCKS, cursor, count=1, block=5000)):
                seller.check()
            ms.append((time.perf_counter() - start) * 1000)
            cursor = read[-1][0]
        cpu_ms = (seller.cpu() - cpu_start) * 1000 / (count - WARMUP)
    arr = np.array(ms[WARMUP:])  # the first samples fill the ATM IV cache of the history
    return {
        "p50": float(np.percentile(arr, 50)),
        "p99": float(np.percentile(arr, 99)),
        "max": float(arr.max()),
        "first": ms[0],
        "cpu": cpu_ms,
    }


def compute_only(settings: Settings, history: list[OptionChain], count: int) -> float:
    client = client_for(settings)
    worker = SellerWorker(settings, consumer="bench-compute")
    snaps = [snap for _, snap in samples_of(history, count)]
    worker.chain_views.cache.refresh()
    worker.chain_views.view(snaps[0])  # fills the ATM IV cache once
    start = time.perf_counter()
    for snap in snaps:
        ctx = worker.context(snap)
        data = compute_seller(ctx, worker.chain_views.view(snap))
        assert isinstance(data.chain, ChainFresh), data.chain
    client.close()
    return (time.perf_counter() - start) * 1000 / count


def full_cache_view(history: list[OptionChain], repeats: int = 50) -> tuple[int, float]:
    """ChainViews.view + the ATM IV percentile with the cache full (12 expiries x 2,000
    snapshots, real chains relabelled): what a seller pays per block after a week of live
    polling. Returns (history length, ms per view)."""
    cache = ChainCache(None)  # type: ignore[arg-type]  # filled directly, no Redis
    expiries = [(to_date(EXPIRIES[0]) + timedelta(days=7 * i)).isoformat() for i in range(12)]
    start = history[0].snapshot_time
    for i in range(cache.max_per_expiry):
        chain = history[i % len(history)]
        for expiry in expiries:
            cache.add(chain.model_copy(update={"expiry": expiry, "snapshot_time": start + 60 * i}))
    views = ChainViews(cache, max_age_s=3600)
    snap = daily_snapshot("2025-06-27").model_copy(
        update={
            "as_of": start + 60 * cache.max_per_expiry,
            "session_date": SESSION,
            "next_expiry": expiries[0],
        }
    )
    view = views.view(snap)  # the first computes every ATM IV
    begin = time.perf_counter()
    for _ in range(repeats):
        view = views.view(snap)
        assert view.atm_iv is not None
        percentile_rank(view.atm_iv_history, view.atm_iv)
    return len(view.atm_iv_history), (time.perf_counter() - begin) * 1000 / repeats


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--worker", choices=("process", "thread"), default="process")
    parser.add_argument("--no-write", action="store_true", help="print only, keep BENCHMARKS.md")
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=None,
        help="trained models for the seller (default: none, labelled heuristics)",
    )
    args = parser.parse_args()
    if args.samples <= WARMUP:
        parser.error(f"--samples must exceed the {WARMUP} warm-up samples")
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
                model_dir=args.model_dir or Path(tmp) / "models",
                block_ms=100,
                clock="event",
                log_level="WARNING",
            )
            lat = latency(settings, history, args.samples, args.worker)
            pure = compute_only(settings, history, args.samples)
    full_history, full_ms = full_cache_view(history)
    print(
        args.worker,
        lat,
        f"compute {pure:.2f} ms",
        f"full-cache view {full_ms:.2f} ms ({full_history} snapshots)",
        f"load {' '.join(load)}",
        flush=True,
    )
    if args.no_write:
        return
    busy = float(load[0]) > (os.cpu_count() or 1) / 2
    body = "\n".join(
        [
            f"`.venv/bin/python -m bench.bench_chain --samples {args.samples} --worker "
            f"{args.worker}{' --model-dir DIR' if args.model_dir else ''}` on "
            f"{os.cpu_count()} cores, "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average at start "
            f"{' '.join(load)} ({'busy: rerun on a quiet box' if busy else 'quiet'}).",
            "A sample = 3 new chains (150 strikes each, 3 weekly expiries) + 1 feature snapshot "
            "XADDed, until the seller block is readable (one replica in "
            f"{'its own process' if args.worker == 'process' else 'a thread of the bench'}, "
            + (
                "trained models (`python -m services.trainer train`)"
                if args.model_dir
                else "models absent: labelled heuristics elsewhere in the block"
            )
            + "). History: "
            f"{len(history)} real snapshots. Host speed: `sum(range(10**6))` took "
            f"{reference_ms:.0f} ms at start (compare on the rerun). The first sample computes "
            f"the ATM IV of every kept snapshot once; the first {WARMUP} are left out.",
            "",
            "| p50 ms | p99 ms | max ms | worker CPU ms / sample | first sample ms | "
            "compute only ms | view + percentile, full cache ms |",
            "|---|---|---|---|---|---|---|",
            f"| {lat['p50']:.2f} | {lat['p99']:.2f} | {lat['max']:.2f} | {lat['cpu']:.2f} | "
            f"{lat['first']:.1f} | {pure:.2f} | {full_ms:.2f} |",
            "",
            f"Compute only: `ChainViews.view` + `compute_seller` in this process. Full cache: "
            f"the view and the ATM IV percentile over {full_history:,} kept snapshots "
            "(12 expiries x 2,000, the ChainCache bound), what a seller pays per block after "
            "a week of live polling.",
        ]
    )
    write_section("Chain", body)


if __name__ == "__main__":
    main()
