"""History store size and write speed over a year of sessions, with the retention on.

Writes ``--sessions`` weekdays of one-minute blocks (375 minutes x the four engines, shaped as
docs/DOCUMENT.md describes by tests/block_factory.py, the seller's with a chain group) to a
fresh SQLite file through the history's own write and retention code, a session per batch,
stream time advancing as in a replay. Reports the write and thinning rate, the rows kept and
the file size (after VACUUM) after the detail window and at the end: the size a year of
history needs is bounded by the detail window plus one row per engine and series per step.
Usage: python -m bench.bench_history [--sessions 250] [--detail-days 30] [--step-s 900]
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select, text

from bench.sections import write_section
from shared.contract.schemas import SignalBlock
from shared.history.retention import Retention
from shared.history.schema import block, series_point
from shared.history.series import SERIES
from shared.history.store import HistoryStore, migrate, open_engine
from shared.market.calendar import IST
from tests.block_factory import make_block
from tests.postgres_server import PostgresServer, binaries

ENGINES = ("market", "direction", "seller", "buyer")
MINUTES = 375


def chain(spot: float) -> dict[str, Any]:
    """A chain group of a real chain's size: 3 walls a side, 41 smile points, the straddle."""
    strikes = [round(spot / 50) * 50 + 50 * k for k in range(-20, 21)]
    return {
        "pcr": {"oi": 0.92, "volume": 0.88, "oi_near_atm": 0.97, "near_strikes": 5},
        "max_pain": {"strike": strikes[20], "zone": [strikes[18], strikes[22]]},
        "walls": {
            "calls": [{"strike": s, "oi": 9e6 - k * 1e6} for k, s in enumerate(strikes[24:27])],
            "puts": [{"strike": s, "oi": 8e6 - k * 1e6} for k, s in enumerate(strikes[14:17])],
        },
        "smile": {"points": [{"strike": s, "iv": 0.11, "side": "ce"} for s in strikes]},
        "atm_iv": {"value": 0.112, "percentile": 0.4, "rank": 0.35},
        "straddle": {"strike": strikes[20], "move_points": round(spot * 0.01, 2)},
    }


def session_blocks(day: date) -> list[SignalBlock]:
    open_s = int(datetime(day.year, day.month, day.day, 9, 15, tzinfo=IST).timestamp())
    out = []
    for minute in range(MINUTES):
        as_of, spot = open_s + 60 * minute, 25_000.0 + minute
        for engine in ENGINES:
            extra = {"chain": chain(spot)} if engine == "seller" else None
            out.append(make_block(engine, as_of=as_of, spot=spot, extra=extra))
    return out


def weekdays(start: date, count: int) -> list[date]:
    days: list[date] = []
    day = start
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def size_mb(store: HistoryStore) -> float:
    """The tables' size on disk with deleted rows reclaimed (VACUUM / VACUUM FULL)."""
    engine = store.engine
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("VACUUM"))
            return round(Path(str(engine.url.database)).stat().st_size / 1e6, 1)
        conn.execute(text("VACUUM FULL"))
        total = conn.execute(
            text("SELECT pg_total_relation_size('block') + pg_total_relation_size('series_point')")
        ).scalar_one()
        return round(total / 1e6, 1)


def rows(store: HistoryStore) -> tuple[int, int]:
    with store.engine.connect() as conn:
        blocks = conn.execute(select(func.count()).select_from(block)).scalar_one()
        points = conn.execute(select(func.count()).select_from(series_point)).scalar_one()
    return blocks, points


def p99_ms(calls: list[Callable[[], object]]) -> tuple[float, float]:
    """(p50, p99) in ms of each call, run once each."""
    times = []
    for call in calls:
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    p50, p99 = np.percentile(times, [50, 99])
    return round(float(p50), 2), round(float(p99), 2)


def fill(store: HistoryStore, days: list[date], args: argparse.Namespace) -> dict[str, Any]:
    """Write every session, a batch each, thinning as the stream passes (the worker's path)."""
    retention = Retention(args.detail_days * 86_400, args.step_s)
    write_s = thin_s = 0.0
    written = thinned = 0
    for day in days:
        blocks = session_blocks(day)
        started = time.perf_counter()
        written += store.write(blocks)
        wrote = time.perf_counter()
        thinned += retention.advance(store, blocks)
        write_s, thin_s = write_s + wrote - started, thin_s + time.perf_counter() - wrote
    rng = np.random.default_rng(0)
    recent = days[-args.detail_days * 5 // 7 :]
    first, last = _session(days[0])[0], _session(days[-1])[1]
    series_calls: list[Callable[[], object]] = [
        partial(store.series, SERIES[rng.integers(len(SERIES))].name, *_session(day))
        for day in (recent[i] for i in rng.integers(0, len(recent), 200))
    ]
    document_calls: list[Callable[[], object]] = [
        partial(store.blocks_at, int(t)) for t in rng.integers(first, last, 200)
    ]
    blocks_kept, points_kept = rows(store)
    return {
        "written": written,
        "write_s": write_s,
        "thinned": thinned,
        "thin_s": thin_s,
        "blocks": blocks_kept,
        "points": points_kept,
        "series_ms": p99_ms(series_calls),
        "document_ms": p99_ms(document_calls),
        "mb": size_mb(store),
    }


def _session(day: date) -> tuple[int, int]:
    open_s = int(datetime(day.year, day.month, day.day, 9, 15, tzinfo=IST).timestamp())
    return open_s, open_s + MINUTES * 60


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=250)
    parser.add_argument("--detail-days", type=int, default=30)
    parser.add_argument("--step-s", type=int, default=900)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    args = parser.parse_args()
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    days = weekdays(date(2025, 1, 1), args.sessions)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        for backend in args.backends:
            if backend == "sqlite":
                url = f"sqlite:///{Path(tmp) / 'history.sqlite3'}"
            elif binaries() is None:
                print("PostgreSQL is not installed: skipped")
                continue
            else:
                url = stack.enter_context(PostgresServer()).new_database()
            store = HistoryStore(open_engine(url))
            migrate(store.engine)
            results[backend] = fill(store, days, args)
            store.engine.dispose()
            print(backend, results[backend])
    detail_sessions = sum(d > days[-1] - timedelta(days=args.detail_days) for d in days)
    older = len(days) - detail_sessions
    lines = []
    for backend, r in results.items():
        per_block = r["mb"] * 1e6 / max(r["blocks"], 1)
        lines.append(
            f"| {backend} | {r['written']:,} in {r['write_s']:.1f} s "
            f"({r['written'] / r['write_s']:,.0f}/s) | {r['thinned']:,} rows in "
            f"{r['thin_s']:.1f} s | {r['blocks']:,} blocks, {r['points']:,} points | "
            f"**{r['mb']} MB** ({per_block / 1e3:.1f} kB a kept block; "
            f"{r['written'] * per_block / 1e9:.1f} GB without retention) | "
            f"{r['series_ms'][0]} / {r['series_ms'][1]} ms | "
            f"{r['document_ms'][0]} / {r['document_ms'][1]} ms |"
        )
    body = f"""`python -m bench.bench_history --sessions {args.sessions} --detail-days \
{args.detail_days} --step-s {args.step_s}` ({date.today()}, load average at start {load}): \
{len(ENGINES)} engines x {MINUTES} one-minute blocks a session (the seller's with a chain \
group), written a session per batch through the history's own write and retention code, \
stream time advancing as in a replay. Then 200 one-session reads of a random series in the \
detail window and 200 documents at a random moment of the year (time travel), timed in \
process (the API adds its HTTP round trip). SQLite: the embedded default (WAL, synchronous \
NORMAL); PostgreSQL: the tests' server (tests/postgres_server.py, fsync off), bodies TOASTed.

| backend | blocks written (series points included) | thinning | kept | size \
| a day of a series p50 / p99 | the document at T p50 / p99 |
|---|---|---|---|---|---|---|
{chr(10).join(lines)}

Kept: every row of the last {args.detail_days} days ({detail_sessions} sessions), then one \
block per engine and one point per series each {args.step_s // 60} minutes ({older} older \
sessions). The size is bounded whatever the history's length: the detail window holds at \
most {args.detail_days} days of every block, and each older session adds \
{MINUTES * 60 // args.step_s} blocks per engine instead of {MINUTES}."""
    write_section("History store", body)


if __name__ == "__main__":
    main()
