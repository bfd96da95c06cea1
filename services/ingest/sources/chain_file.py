"""Option-chain snapshots from files. The intraday snapshot CSV (data/SOURCES.md §5):
snapshot_ts,expiry,strike,ce_ltp,ce_oi,ce_volume,pe_ltp,pe_oi,pe_volume,spot; rows of one
(snapshot_ts, expiry) are consecutive and form one ``OptionChain``; OI and volume in units as
given; an LTP of 0 means no trade and becomes None. The other layouts (NSE's option-chain
export, end-of-day tables, F&O bhavcopies) are read by ``chain_formats``. A file that cannot
be read at all is one ``RejectedInput`` naming what is missing; nothing else is lost.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import math
import threading
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path

from services.ingest.sources import chain_formats
from services.ingest.sources.base import RejectedInput
from services.ingest.sources.chain_formats import ChainFileError, FileContext
from services.ingest.sources.pacing import Pacer
from shared.config import Settings
from shared.contract.schemas import OptionChain, OptionQuote
from shared.logs import get_logger
from shared.market.calendar import daily_close_time, ist_date

COLUMNS = (
    "snapshot_ts",
    "expiry",
    "strike",
    "ce_ltp",
    "ce_oi",
    "ce_volume",
    "pe_ltp",
    "pe_oi",
    "pe_volume",
    "spot",
)

log = get_logger("ingest.chain_file")


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _number(row: dict[str, str], name: str) -> float:
    text = (row.get(name) or "").strip()
    try:
        value = float(text) if text else 0.0
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name}={text!r} is not a non-negative number")
    return value


def _ltp(row: dict[str, str], name: str) -> float | None:
    value = _number(row, name)
    return value if value > 0 else None


def _quote(row: dict[str, str]) -> OptionQuote:
    strike = _number(row, "strike")
    if strike <= 0:
        raise ValueError("strike must be positive")
    return OptionQuote(
        strike=strike,
        ce_ltp=_ltp(row, "ce_ltp"),
        ce_oi=_number(row, "ce_oi"),
        pe_ltp=_ltp(row, "pe_ltp"),
        pe_oi=_number(row, "pe_oi"),
        ce_volume=_number(row, "ce_volume"),
        pe_volume=_number(row, "pe_volume"),
    )


def _raw(row: dict[str, str]) -> bytes:
    return ",".join(row.get(c) or "" for c in COLUMNS).encode()


def daily_close_spot(daily_csv: Path) -> Callable[[int], float | None]:
    """``spot_at(epoch_s)`` from a daily bar file (date,...,close): the session's close once
    ``epoch_s`` is at or after its 15:30 IST close, else None (no intraday spot invented)."""
    closes: dict[date, float] = {}

    def spot_at(epoch_s: int) -> float | None:
        if not closes and daily_csv.exists():
            with open(daily_csv, encoding="utf-8-sig", newline="") as handle:
                for row in csv.DictReader(handle):
                    closes[date.fromisoformat(row["date"])] = float(row["close"])
        day = ist_date(epoch_s)
        return closes.get(day) if epoch_s >= daily_close_time(day) else None

    return spot_at


def file_context(settings: Settings) -> FileContext:
    """Snapshot time and spot for chain files that lack them, from AEGIS_CHAIN_FILE_* or
    the bundled NIFTY daily bars."""
    return FileContext(
        chain_formats.snapshot_time_setting(settings.chain_file_snapshot_ts),
        settings.chain_file_spot,
        daily_close_spot(settings.data_dir / "nifty50_daily.csv"),
    )


class ChainFileSource:
    """Yields one ``OptionChain`` per snapshot of the CSV (gzip OK), in file order; given a
    folder, the chains of all its files in time order.

    ``speed`` > 0 paces snapshots by their time gaps (60 = 60x real time, each wait capped at
    ``max_gap_s``); a malformed row or snapshot is yielded as ``RejectedInput``.
    """

    def __init__(
        self,
        path: Path,
        speed: float = 0.0,
        *,
        max_gap_s: float | None = None,
        stop: threading.Event | None = None,
        context: FileContext | None = None,
    ) -> None:
        self.path = Path(path)
        self.context = context or FileContext(None, None, lambda _: None)
        self.name = f"chain_file:{self.path.name}"
        self._stop = stop or threading.Event()
        self._pacer = Pacer(speed, max_gap_s, wait=self._stop.wait)

    def events(self) -> Iterator[OptionChain | RejectedInput]:
        if self.path.is_dir():
            yield from self._folder()
            return
        try:
            with _open_text(self.path) as handle:
                head = chain_formats.read_rows(itertools.islice(handle, 2))
            first, second = [*head, [], []][:2]
            kind = chain_formats.detect(first, second)
            if kind == "intraday":
                yield from self._intraday()
                return
            chains = self._other(kind)
        except (ChainFileError, OSError, UnicodeDecodeError, csv.Error) as exc:
            log.warning("chain_file_rejected", path=str(self.path), reason=str(exc))
            yield RejectedInput(f"chain file {self.path.name}: {exc}", str(self.path).encode())
            return
        for chain in chains:
            if not self._pacer.pace(chain.snapshot_time):
                return
            yield chain
            if self._stop.is_set():
                return

    def _folder(self) -> Iterator[OptionChain | RejectedInput]:
        """Every file of a folder (e.g. a month of bhavcopies), each read on its own, the
        chains yielded in snapshot-time order and each unreadable file as one rejection."""
        found: list[OptionChain] = []
        for path in sorted(p for p in self.path.iterdir() if p.is_file()):
            source = ChainFileSource(path, stop=self._stop, context=self.context)
            for event in source.events():
                if isinstance(event, OptionChain):
                    found.append(event)
                else:
                    yield event
        for chain in sorted(found, key=lambda c: (c.snapshot_time, c.expiry)):
            if not self._pacer.pace(chain.snapshot_time):
                return
            yield chain
            if self._stop.is_set():
                return

    def _other(self, kind: str) -> list[OptionChain]:
        with _open_text(self.path) as handle:
            if kind == "nse_export":
                return [
                    chain_formats.nse_export(
                        chain_formats.read_rows(handle), self.path, self.context
                    )
                ]
            reader = csv.DictReader(handle)
            rows, fields = list(reader), list(reader.fieldnames or ())
        if kind == "eod_table":
            return chain_formats.eod_table(fields, rows, self.path, self.context)
        return chain_formats.bhavcopy(fields, rows, self.path, self.context, kind)

    def _intraday(self) -> Iterator[OptionChain | RejectedInput]:
        last_time: int | None = None
        for rows, rejected in self._snapshots():
            yield from rejected
            if not rows:
                continue
            event = self._chain(rows)
            if isinstance(event, OptionChain):
                if last_time is not None and event.snapshot_time < last_time:
                    event = RejectedInput(
                        f"snapshot {rows[0]['snapshot_ts']} is older than the previous one",
                        b"\n".join(_raw(r) for r in rows),
                    )
                else:
                    last_time = event.snapshot_time
                    if not self._pacer.pace(event.snapshot_time):
                        return
            yield event
            if self._stop.is_set():
                return

    @property
    def status(self) -> dict[str, object]:
        return {"source": self.name, "path": str(self.path)}

    def close(self) -> None:
        self._stop.set()

    def _snapshots(self) -> Iterator[tuple[list[dict[str, str]], list[RejectedInput]]]:
        """Groups consecutive rows by (snapshot_ts, expiry); rows failing to parse are
        returned beside their group as rejections."""
        with _open_text(self.path) as handle:
            reader = csv.DictReader(handle)
            missing = set(COLUMNS) - set(reader.fieldnames or ())
            if missing:
                raise ChainFileError(f"lacks columns {sorted(missing)}")
            key: tuple[str, str] | None = None
            rows: list[dict[str, str]] = []
            rejected: list[RejectedInput] = []
            for row in reader:
                row_key = (row["snapshot_ts"], row["expiry"])
                if row_key != key and (rows or rejected):
                    yield rows, rejected
                    rows, rejected = [], []
                key = row_key
                try:
                    _quote(row)
                    rows.append(row)
                except ValueError as exc:
                    rejected.append(
                        RejectedInput(f"chain row line {reader.line_num}: {exc}", _raw(row))
                    )
            if rows or rejected:
                yield rows, rejected

    def _chain(self, rows: list[dict[str, str]]) -> OptionChain | RejectedInput:
        first = rows[0]
        try:
            moment = datetime.fromisoformat(first["snapshot_ts"])
            if moment.tzinfo is None:
                raise ValueError(f"snapshot_ts {first['snapshot_ts']!r} has no UTC offset")
            expiry = date.fromisoformat(first["expiry"]).isoformat()
            spot = _number(first, "spot")
            if spot <= 0:
                raise ValueError("spot must be positive")
            quotes = sorted((_quote(r) for r in rows), key=lambda q: q.strike)
            if len({q.strike for q in quotes}) != len(quotes):
                raise ValueError("duplicate strikes")
            return OptionChain(
                snapshot_time=int(moment.timestamp()),
                expiry=expiry,
                spot=spot,
                quotes=tuple(quotes),
                source=self.name,
            )
        except ValueError as exc:
            log.warning("chain_snapshot_rejected", path=str(self.path), reason=str(exc))
            return RejectedInput(
                f"chain snapshot {first.get('snapshot_ts')!r}: {exc}",
                b"\n".join(_raw(r) for r in rows),
            )
