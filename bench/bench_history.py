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
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from bench.sections import write_section
from shared.calendar import IST
from shared.history.retention import Retention
from shared.history.schema import block, series_point
from shared.history.store import HistoryStore, migrate, open_engine
from shared.schemas import SignalBlock
from tests.block_factory import make_block

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


def measure(store: HistoryStore, path: Path) -> dict[str, Any]:
    with store.engine.connect() as conn:
        blocks = conn.execute(select(func.count()).select_from(block)).scalar_one()
        points = conn.execute(select(func.count()).select_from(series_point)).scalar_one()
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM"))
    return {"blocks": blocks, "points": points, "mb": round(path.stat().st_size / 1e6, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=250)
    parser.add_argument("--detail-days", type=int, default=30)
    parser.add_argument("--step-s", type=int, default=900)
    args = parser.parse_args()
    load = Path("/proc/loadavg").read_text().split()[:3]
    days = weekdays(date(2025, 1, 1), args.sessions)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "history.sqlite3"
        store = HistoryStore(open_engine(f"sqlite:///{path}"))
        migrate(store.engine)
        retention = Retention(args.detail_days * 86_400, args.step_s)
        write_s = thin_s = 0.0
        written = thinned = 0
        for day in days:
            blocks = session_blocks(day)
            started = time.perf_counter()
            written += store.write(blocks)
            wrote = time.perf_counter()
            thinned += retention.advance(store, blocks[-1].as_of)
            write_s, thin_s = write_s + wrote - started, thin_s + time.perf_counter() - wrote
        final = measure(store, path)
        store.engine.dispose()
    detail_sessions = sum(d > days[-1] - timedelta(days=args.detail_days) for d in days)
    older = len(days) - detail_sessions
    per_older = (final["blocks"] - detail_sessions * MINUTES * len(ENGINES)) / max(older, 1)
    full_block = (final["mb"] * 1e6) / max(final["blocks"], 1)
    print(
        f"{written} blocks written in {write_s:.1f} s ({written / write_s:,.0f}/s), "
        f"thinning {thin_s:.1f} s ({thinned} rows); kept {final['blocks']} blocks and "
        f"{final['points']} points, {final['mb']} MB after VACUUM; "
        f"{detail_sessions} sessions in the detail window"
    )
    body = f"""`python -m bench.bench_history --sessions {args.sessions} --detail-days \
{args.detail_days} --step-s {args.step_s}` ({date.today()}, load average at start \
{" ".join(load)}, {len(ENGINES)} engines x {MINUTES} one-minute blocks a session, the seller's \
with a chain group; SQLite, the embedded default):

| figure | value |
|---|---|
| blocks written | {written:,} in {write_s:.1f} s ({written / write_s:,.0f} blocks/s, \
series points included) |
| thinning (retention) | {thinned:,} rows deleted in {thin_s:.1f} s, as the stream passed \
each step |
| kept at the end | {final["blocks"]:,} blocks, {final["points"]:,} points: every row of the last \
{args.detail_days} days ({detail_sessions} sessions), one per engine and series per \
{args.step_s // 60} minutes before |
| file size | **{final["mb"]} MB** after VACUUM ({full_block / 1e3:.1f} kB per kept block, its \
points and indexes included) |

The size is bounded whatever the history's length: the detail window holds at most \
{args.detail_days} days of every block, and each older session keeps \
{per_older / len(ENGINES):.0f} blocks per engine instead of {MINUTES}. Without retention the \
same year would keep all {written:,} blocks (about {written * full_block / 1e9:.1f} GB at the \
same bytes per block)."""
    write_section("History store", body)


if __name__ == "__main__":
    main()
