"""The option market's daily context from files: NSE's participant-wise open interest (a
folder of raw ``fao_participant_oi_*.csv`` reports, one report, or the history of nets) and
the near-month future's end-of-day row (data/nifty_futures_daily_*.csv). Each session's
record becomes a ``ParticipantPositions`` / ``FuturesDay`` message known from that evening
(``REPORT_TIME`` IST: NSE publishes both after the close), published in that order; a file
that cannot be read is one ``RejectedInput``, a bad futures row one rejection each."""

from __future__ import annotations

import csv
import math
import threading
from collections.abc import Iterator
from datetime import date, datetime, time
from pathlib import Path

from services.ingest.sources.base import RejectedInput, SourceEvent
from services.ingest.sources.participant_oi import ParticipantOIError, load_participant_oi
from shared.contract.schemas import FuturesDay, ParticipantPositions
from shared.market.calendar import IST
from shared.market.participant_oi import to_message

REPORT_TIME = time(19, 0)  # both reports are out by then (NSE posts them after 17:30)
FUTURES_COLUMNS = ("date", "future_expiry", "future_close", "future_oi")

Record = ParticipantPositions | FuturesDay


def available_at(day: date) -> int:
    return int(datetime.combine(day, REPORT_TIME, IST).timestamp())


def _optional(row: dict[str, str], name: str) -> float | None:
    text = (row.get(name) or "").strip()
    if not text:
        return None
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{name}={text!r} is not finite")
    return value


def futures_day(row: dict[str, str], source: str) -> FuturesDay:
    """One row of the futures history; raises ValueError naming what is wrong."""
    day = date.fromisoformat(row["date"])
    close, oi = _optional(row, "future_close"), _optional(row, "future_oi")
    if close is None or close <= 0 or oi is None or oi < 0:
        raise ValueError(f"future_close {close} / future_oi {oi}: need a price > 0 and OI >= 0")
    expiry = date.fromisoformat(row["future_expiry"])
    if expiry < day:
        raise ValueError(f"future_expiry {expiry} is before the session {day}")
    return FuturesDay(
        session_date=day.isoformat(),
        available_at=available_at(day),
        expiry=expiry.isoformat(),
        close=close,
        oi_units=oi,
        oi_change_units=_optional(row, "future_change_oi"),
        basis_pct=_optional(row, "future_basis_pct"),
        source=f"file:{source}",
    )


def read_futures(path: Path) -> Iterator[FuturesDay | RejectedInput]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = set(FUTURES_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            yield RejectedInput(f"{path.name}: lacks columns {sorted(missing)}", b"")
            return
        for line, row in enumerate(reader, start=2):
            try:
                yield futures_day(row, path.name)
            except (KeyError, ValueError) as exc:
                raw = ",".join(row.get(c) or "" for c in reader.fieldnames or ()).encode()
                yield RejectedInput(f"{path.name} line {line}: {exc}", raw)


def read_participants(path: Path) -> Iterator[ParticipantPositions | RejectedInput]:
    try:
        days = load_participant_oi(path)
    except (ParticipantOIError, OSError) as exc:
        yield RejectedInput(f"participant OI {path.name}: {exc}", str(path).encode())
        return
    for day in days:
        yield to_message(day, available_at(day.day))


class PositioningFileSource:
    """Both files' records in the order they became known (participants first on a tie)."""

    name = "positioning-file"

    def __init__(
        self,
        participants: Path | None,
        futures: Path | None,
        stop: threading.Event | None = None,
    ) -> None:
        self.participants = participants
        self.futures = futures
        self._stop = stop or threading.Event()

    def events(self) -> Iterator[SourceEvent | RejectedInput]:
        records: list[tuple[int, int, Record]] = []
        for rank, reader in (
            (0, read_participants(self.participants) if self.participants else iter(())),
            (1, read_futures(self.futures) if self.futures else iter(())),
        ):
            for event in reader:
                if isinstance(event, RejectedInput):
                    yield event
                else:
                    records.append((event.available_at, rank, event))
        for _, _, record in sorted(records, key=lambda r: r[:2]):
            if self._stop.is_set():
                return
            yield record

    def close(self) -> None:
        self._stop.set()

    @property
    def status(self) -> dict[str, object]:
        return {}
