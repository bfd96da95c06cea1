"""Calendar gaps between consecutive daily bars (the bar checks: shared.market.validation)."""

from __future__ import annotations

from datetime import date

from shared.market import calendar


def session_gap(previous_day: date | None, day: date) -> list[date]:
    """NSE sessions skipped between two consecutive daily bars (a data gap, not an error)."""
    if previous_day is None:
        return []
    return calendar.missing_sessions(previous_day, day)
