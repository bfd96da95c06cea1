"""NSE's daily participant-wise open interest report, and its history, as
``ParticipantOIDay`` records (shared.market.participant_oi).

The raw file (``fao_participant_oi_<DDMMYYYY>.csv`` from nsearchives.nseindia.com/content/
nsccl/) is a title line ``""Participant wise Open Interest (no. of contracts) in Equity
Derivatives as on Feb 06, 2026"",,,...``, then the header ``Client Type,Future Index Long,
...,Total Short Contracts`` (two names carry trailing spaces), then the rows Client, DII,
FII, Pro and TOTAL in contracts. Checked here: the layout, every participant present once,
every cell an integer, each participant's totals equal the sum of its long (short) columns,
and each column's participants sum to the TOTAL row, all within ``tolerance`` contracts
(NSE's own TOTAL row is off by one now and then).

The history CSV (data/nse_participant_oi_daily_2024-09_2026-02.csv) carries the nets only:
``date`` then ``<fii|dii|client|pro>_<index_future_net|...|total_net>``.

Anything unreadable raises ``ParticipantOIError`` naming the file and line.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from itertools import pairwise
from pathlib import Path

from shared.market.participant_oi import (
    HISTORY_COLUMNS,
    NET_FIELDS,
    PARTICIPANTS,
    RAW_COLUMNS,
    LongShort,
    ParticipantNets,
    ParticipantOIDay,
)

TOTAL_TOLERANCE = 2  # contracts; the history's categories sum to zero within +-2 as well
TITLE = re.compile(r"participant\s+wise\s+open\s+interest", re.I)
TITLE_DATE = re.compile(r"as\s+on\s+([A-Za-z]+)\.?\s+(\d{1,2}),?\s*(\d{4})", re.I)
FILE_DATE = re.compile(r"fao_participant_oi_(\d{8})", re.I)
ROW_NAMES = {"client": "client", "dii": "dii", "fii": "fii", "pro": "pro", "total": "total"}


class ParticipantOIError(ValueError):
    """A participant-wise OI file cannot be read; the text names the file and line."""


def _title_date(title: str, name: str) -> date:
    if not TITLE.search(title):
        what = "trading-volume report" if "volume" in title.lower() else "title"
        raise ParticipantOIError(
            f"{name} line 1: not NSE's participant-wise open interest {what} "
            f"({title.strip()[:80]!r})"
        )
    found = TITLE_DATE.search(title)
    if not found:
        raise ParticipantOIError(f"{name} line 1: the title has no 'as on <Mon DD, YYYY>' date")
    month, day, year = found.groups()
    try:
        return datetime.strptime(f"{month[:3].title()} {day} {year}", "%b %d %Y").date()
    except ValueError as exc:
        raise ParticipantOIError(f"{name} line 1: date {found.group(0)!r}: {exc}") from exc


def _count(text: str, name: str, line: int, column: str) -> int:
    cell = text.strip().replace(",", "")
    try:
        value = float(cell)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value != int(value):
        raise ParticipantOIError(
            f"{name} line {line}: {column} = {text!r} is not a whole number of contracts"
        )
    return int(value)


def parse_participant_oi(
    text: str, name: str = "<text>", *, tolerance: int = TOTAL_TOLERANCE
) -> ParticipantOIDay:
    """One day of NSE's raw report from its text; ``name`` is used in errors and as source."""
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if len(lines) < 2:
        raise ParticipantOIError(f"{name}: empty, or no header after the title")
    day = _title_date(lines[0][1], name)
    _check_header(*lines[1], name)
    rows: dict[str, tuple[int, LongShort]] = {}
    for number, raw in lines[2:]:
        cells = next(csv.reader([raw]))
        who = _client_type(cells, number, name)
        if who in rows:
            raise ParticipantOIError(f"{name} line {number}: second {cells[0].strip()} row")
        rows[who] = (number, _counts(cells[1:], number, name))
    missing = [p for p in (*PARTICIPANTS, "total") if p not in rows]
    if missing:
        raise ParticipantOIError(f"{name}: no row for {', '.join(m.upper() for m in missing)}")
    _check_row_totals(rows, name, tolerance)
    _check_column_totals(rows, name, tolerance)
    nets = {p: ParticipantNets.from_raw(rows[p][1]) for p in PARTICIPANTS}
    return ParticipantOIDay(day=day, source=name, **nets)


def _check_header(line: int, text: str, name: str) -> None:
    """The header row must name NSE's columns, in NSE's order."""
    header = [c.strip() for c in next(csv.reader([text]))]
    while header and not header[-1]:
        header.pop()
    if header != ["Client Type", *RAW_COLUMNS]:
        got, want = header[1:], list(RAW_COLUMNS)
        diff = [f"{g!r} for {w!r}" for g, w in zip(got, want, strict=False) if g != w]
        extra = f"; {len(got)} value columns, expected {len(want)}" if len(got) != len(want) else ""
        raise ParticipantOIError(
            f"{name} line {line}: header is not NSE's participant-wise OI layout "
            f"(first column {header[:1]}, {', '.join(diff[:3]) or 'names ok'}{extra})"
        )


def _client_type(cells: list[str], number: int, name: str) -> str:
    """Whose row it is: a participant or ``total``."""
    who = ROW_NAMES.get(cells[0].strip().lower()) if cells else None
    if who is None:
        raise ParticipantOIError(
            f"{name} line {number}: unknown client type {cells[0].strip()!r} "
            "(expected Client, DII, FII, Pro, TOTAL)"
        )
    return who


def _counts(cells: list[str], number: int, name: str) -> LongShort:
    """A row's contract counts, in NSE's column order."""
    values = list(cells)
    while len(values) > len(RAW_COLUMNS) and not values[-1].strip():
        values.pop()
    if len(values) != len(RAW_COLUMNS):
        raise ParticipantOIError(
            f"{name} line {number}: {len(values)} values, expected {len(RAW_COLUMNS)}"
        )
    counts = tuple(_count(v, name, number, c) for v, c in zip(values, RAW_COLUMNS, strict=True))
    if min(counts) < 0:
        raise ParticipantOIError(f"{name} line {number}: a negative contract count")
    return LongShort.of(counts)


def _check_row_totals(rows: dict[str, tuple[int, LongShort]], name: str, tolerance: int) -> None:
    """Each row's stated long and short totals are the sums of its columns."""
    for number, counts in rows.values():
        for label, stated, summed in (
            ("Total Long Contracts", counts.total_long, counts.longs()),
            ("Total Short Contracts", counts.total_short, counts.shorts()),
        ):
            if abs(stated - summed) > tolerance:
                raise ParticipantOIError(
                    f"{name} line {number}: {label} {stated} != {summed}, the sum of its columns"
                )


def _check_column_totals(rows: dict[str, tuple[int, LongShort]], name: str, tolerance: int) -> None:
    """The TOTAL row's every column is the sum over the four participants."""
    total_line, total_row = rows["total"]
    totals = total_row.values()
    for i, column in enumerate(RAW_COLUMNS):
        column_sum = sum(rows[p][1].values()[i] for p in PARTICIPANTS)
        if abs(column_sum - totals[i]) > tolerance:
            raise ParticipantOIError(
                f"{name} line {total_line}: TOTAL {column} {totals[i]} != {column_sum}, "
                "the sum over Client, DII, FII and Pro"
            )


def read_participant_oi(path: Path, *, tolerance: int = TOTAL_TOLERANCE) -> ParticipantOIDay:
    """One raw file; a DDMMYYYY date in its name must agree with the title's date."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ParticipantOIError(f"{path.name}: {exc}") from exc
    day = parse_participant_oi(text, path.name, tolerance=tolerance)
    found = FILE_DATE.search(path.name)
    if found:
        try:
            named = datetime.strptime(found.group(1), "%d%m%Y").date()
        except ValueError as exc:
            raise ParticipantOIError(f"{path.name}: file name date: {exc}") from exc
        if named != day.day:
            raise ParticipantOIError(
                f"{path.name} line 1: title date {day.day} differs from the file name's {named}"
            )
    return day


def _history_day(row: dict[str, str], name: str, line: int) -> ParticipantOIDay:
    try:
        day = date.fromisoformat(row["date"].strip())
    except ValueError as exc:
        raise ParticipantOIError(f"{name} line {line}: date {row['date']!r}: {exc}") from exc
    nets: dict[str, ParticipantNets] = {}
    for who in PARTICIPANTS:
        v = {f: _count(row[f"{who}_{f}"], name, line, f"{who}_{f}") for f in NET_FIELDS}
        entry = ParticipantNets(
            index_future_net=v["index_future_net"],
            stock_future_net=v["stock_future_net"],
            index_call_net=v["index_call_net"],
            index_put_net=v["index_put_net"],
            total_net=v["total_net"],
        )
        if entry.index_option_direction != v["index_option_direction"]:
            raise ParticipantOIError(
                f"{name} line {line}: {who}_index_option_direction {v['index_option_direction']}"
                f" != call net - put net = {entry.index_option_direction}"
            )
        nets[who] = entry
    return ParticipantOIDay(day=day, source=name, **nets)


def parse_participant_oi_history(text: str, name: str = "<text>") -> list[ParticipantOIDay]:
    """The history CSV's text, one record per row, in date order (strictly increasing)."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in HISTORY_COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise ParticipantOIError(f"{name} line 1: history lacks columns {missing[:4]}")
    days = [_history_day(row, name, reader.line_num) for row in reader]
    _check_order(days, name)
    return days


def read_participant_oi_history(path: Path) -> list[ParticipantOIDay]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ParticipantOIError(f"{path.name}: {exc}") from exc
    return parse_participant_oi_history(text, path.name)


def write_participant_oi_history(days: Iterable[ParticipantOIDay], path: Path) -> None:
    """Records (raw or history) as the history CSV, in the history's layout."""
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for day in sorted(days, key=lambda d: d.day):
            writer.writerow(day.history_row())


def _check_order(days: Sequence[ParticipantOIDay], name: str) -> None:
    for before, after in pairwise(days):
        if after.day <= before.day:
            raise ParticipantOIError(
                f"{name}: {after.source} ({after.day}) is not after {before.source} "
                f"({before.day}): dates must be unique and increasing"
            )


def load_participant_oi(path: Path, *, tolerance: int = TOTAL_TOLERANCE) -> list[ParticipantOIDay]:
    """A folder of raw ``fao_participant_oi_*.csv`` files, one raw file, or the history
    CSV (told apart by a first line starting ``date,``); records in date order. Two files
    of one date are an error."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and FILE_DATE.search(p.name))
        if not files:
            raise ParticipantOIError(f"{path}: no fao_participant_oi_<DDMMYYYY>.csv files")
        days = sorted(
            (read_participant_oi(p, tolerance=tolerance) for p in files), key=lambda d: d.day
        )
        _check_order(days, path.name)
        return days
    try:
        with open(path, encoding="utf-8-sig") as handle:
            first = handle.readline()
    except (OSError, UnicodeDecodeError) as exc:
        raise ParticipantOIError(f"{path.name}: {exc}") from exc
    if first.lstrip().lower().startswith("date,"):
        return read_participant_oi_history(path)
    return [read_participant_oi(path, tolerance=tolerance)]
