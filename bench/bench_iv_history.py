"""IV history benchmark: a year of UDiFF bhavcopies (250 trade days) -> IV history CSV.

The days are synthetic copies of one real day's NIFTY rows (tests/fixtures/nse/
NIFTY_2026-01-02.csv.gz, 1,447 rows, 18 expiries): each copy moves the trade date back by k
business days and every expiry by the same number of calendar days (days to expiry kept),
so every copy is parsed, validated and inverted like a real day. Written to a temporary
folder and removed afterwards. Times ``load_iv_history`` (chain file loader + ATM IV +
straddle + forward for every day and expiry) and ``write_iv_history``. Target: <= 60 s on a
2-core box. Prints only.
Usage: python -m bench.bench_iv_history [--days 250]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import os
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from services.ingest.sources.iv_history import load_iv_history, write_iv_history

REAL_DAY = Path(__file__).parent.parent / "tests" / "fixtures" / "nse" / "NIFTY_2026-01-02.csv.gz"
DATE_COLUMNS = ("TradDt", "BizDt", "XpryDt", "FininstrmActlXpryDt")


def business_days_back(day: date, count: int) -> date:
    while count:
        day -= timedelta(days=1)
        count -= day.weekday() < 5
    return day


def write_copies(folder: Path, days: int) -> None:
    with gzip.open(REAL_DAY, "rt", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fields, rows = list(reader.fieldnames or ()), list(reader)
    real = date.fromisoformat(rows[0]["TradDt"])
    for k in range(days):
        shift = real - business_days_back(real, k)
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            moved = dict(row)
            for name in DATE_COLUMNS:
                if moved[name]:
                    moved[name] = (date.fromisoformat(moved[name]) - shift).isoformat()
            writer.writerow(moved)
        day = real - shift
        name = f"BhavCopy_NSE_FO_0_0_0_{day:%Y%m%d}_F_0000.csv"
        (folder / name).write_text(out.getvalue(), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=250)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "bhav"
        folder.mkdir()
        started = time.perf_counter()
        write_copies(folder, args.days)
        made = time.perf_counter() - started
        cpu0, started = time.process_time(), time.perf_counter()
        points, rejected = load_iv_history(folder)
        loaded = time.perf_counter() - started
        write_iv_history(points, Path(tmp) / "iv_history.csv")
        total, cpu = time.perf_counter() - started, time.process_time() - cpu0
    days = len({p.day for p in points})
    print(f"synthetic files: {args.days} written in {made:.1f} s (not timed below)")
    print(
        f"load_iv_history: {days} days, {len(points)} day-expiry points, "
        f"{len(rejected)} rejected, {loaded:.1f} s; + CSV write: {total:.1f} s wall, "
        f"{cpu:.1f} s CPU ({total / max(days, 1) * 1000:.0f} ms a day); target <= 60 s"
    )
    print(f"load average (1, 5, 15 min): {os.getloadavg()}")


if __name__ == "__main__":
    main()
