"""Option-chain snapshots from the NSE/broker-format intraday CSV (data/SOURCES.md §5).

Columns: snapshot_ts,expiry,strike,ce_ltp,ce_oi,ce_volume,pe_ltp,pe_oi,pe_volume,spot. Rows
of one (snapshot_ts, expiry) are consecutive and form one ``OptionChain``. OI stays in units
as given; an LTP of 0 means no trade and becomes None. Volumes are not part of the schema.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import threading
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

from services.ingest.sources.base import RejectedInput, SourceEvent
from services.ingest.sources.pacing import Pacer
from shared.logs import get_logger
from shared.schemas import OptionChain, OptionQuote

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
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


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


class ChainFileSource:
    """Yields one ``OptionChain`` per snapshot of the CSV (gzip OK), in file order.

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
    ) -> None:
        self.path = Path(path)
        self.name = f"chain_file:{self.path.name}"
        self._stop = stop or threading.Event()
        self._pacer = Pacer(speed, max_gap_s, wait=self._stop.wait)

    def events(self) -> Iterator[SourceEvent | RejectedInput]:
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

    def close(self) -> None:
        self._stop.set()

    def _snapshots(self) -> Iterator[tuple[list[dict[str, str]], list[RejectedInput]]]:
        """Groups consecutive rows by (snapshot_ts, expiry); rows failing to parse are
        returned beside their group as rejections."""
        with _open_text(self.path) as handle:
            reader = csv.DictReader(handle)
            missing = set(COLUMNS) - set(reader.fieldnames or ())
            if missing:
                raise ValueError(f"{self.path} lacks columns {sorted(missing)}")
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
