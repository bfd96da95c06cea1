"""Data-quality checks every bar passes before it is published."""

from __future__ import annotations

import math
from datetime import date

from shared import calendar
from shared.schemas import Bar


def bar_problems(bar: Bar) -> list[str]:
    """Reasons this bar is unusable; empty when it is fine."""
    prices = {"open": bar.open, "high": bar.high, "low": bar.low, "close": bar.close}
    problems = [
        f"{name} is not a finite number ({value})"
        for name, value in prices.items()
        if not isinstance(value, int | float) or not math.isfinite(value)
    ]
    if problems:
        return problems
    problems += [
        f"{name} is not positive ({value})" for name, value in prices.items() if value <= 0
    ]
    if bar.high < bar.low:
        problems.append(f"high {bar.high} is below low {bar.low}")
    for name in ("open", "close"):
        if not bar.low <= prices[name] <= bar.high:
            problems.append(f"{name} {prices[name]} is outside low-high [{bar.low}, {bar.high}]")
    return problems


def session_gap(previous_day: date | None, day: date) -> list[date]:
    """NSE sessions skipped between two consecutive daily bars (a data gap, not an error)."""
    if previous_day is None:
        return []
    return calendar.missing_sessions(previous_day, day)
