"""Admission of signal blocks: the gateway takes a block only if the NSE calendar can place it
and it is not ahead of time. A block is refused when

- ``outside_calendar``: its as_of falls outside the calendar's sessions (staleness, which asks
  the calendar when newer data is due, cannot be judged), or its session_date is no session;
- ``ahead_of_clock``: its as_of is later than the wall clock plus the tolerance (true in every
  clock mode: no real bar closes in the future);
- ``ahead_of_input``: its as_of is later than the close of the newest bar ingest published,
  plus the tolerance (a block can only describe data that exists).

Pure: the caller passes the wall time and the newest input close. A refused block must not
touch the document or the event clock (one block dated 2030 would make every block stale).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from shared.contract.schemas import SignalBlock
from shared.market import calendar

RejectReason = str  # outside_calendar | ahead_of_clock | ahead_of_input
MINUTE_INTERVAL_S = {"1m": 60, "5m": 300}


@dataclass(frozen=True)
class Rejection:
    reason: RejectReason  # a short label, used as a metric label
    detail: str  # for the dead letter and the log

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


def check_block(
    block: SignalBlock, *, wall_now_s: float, newest_input_s: int | None, tolerance_s: int
) -> Rejection | None:
    """None when the block may enter the document, else why not."""
    rejection = calendar_rejection(block.kind, block.as_of, block.session_date)
    if rejection is not None:
        return rejection
    if block.as_of > wall_now_s + tolerance_s:
        return Rejection(
            "ahead_of_clock",
            f"as_of {block.as_of} is {block.as_of - int(wall_now_s)} s ahead of the wall clock"
            f" (tolerance {tolerance_s} s)",
        )
    if newest_input_s is not None and block.as_of > newest_input_s + tolerance_s:
        return Rejection(
            "ahead_of_input",
            f"as_of {block.as_of} is {block.as_of - newest_input_s} s after the close of the"
            f" newest input bar (tolerance {tolerance_s} s)",
        )
    return None


@lru_cache(maxsize=4096)  # the calendar is fixed; a replay asks for the same bar 3-4 times
def calendar_rejection(kind: str, as_of: int, session_date: str) -> Rejection | None:
    """``outside_calendar`` when the calendar cannot place the block, else None."""
    sessions = calendar.sessions()
    first, last = sessions[0], sessions[-1]
    day = calendar.ist_date(as_of - 1)  # as_of is a close: 15:30 belongs to its day
    if not first <= day <= last:
        return Rejection(
            "outside_calendar",
            f"as_of {calendar.ist_date(as_of)} is outside the NSE calendar ({first}..{last})",
        )
    try:
        session_day = date.fromisoformat(session_date)
    except ValueError:
        return Rejection("outside_calendar", f"session_date {session_date!r} is no date")
    if not calendar.is_session(session_day):
        return Rejection("outside_calendar", f"session_date {session_day} is no NSE session")
    try:
        calendar.next_bar_due(kind, as_of)
    except ValueError as exc:  # the calendar ends before the next session
        return Rejection("outside_calendar", str(exc))
    return None


def bar_close_s(interval: str, open_time: int) -> int:
    """When a bar that opened at ``open_time`` closes (daily bars: the session's close)."""
    if interval in MINUTE_INTERVAL_S:
        return open_time + MINUTE_INTERVAL_S[interval]
    return calendar.daily_close_time(calendar.ist_date(open_time))
