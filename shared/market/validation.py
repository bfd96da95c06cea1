"""Market-sanity rules every bar passes at each trust boundary (ingest, and again features).

Pure functions: the caller supplies the clock and what it last accepted on the series, and gets
back the reasons a bar is unusable (empty when it is fine). The schema (shared.contract.schemas)
has already checked types, symbols and intervals; these rules check that the numbers can be
real: finite positive prices, a consistent OHLC, a time of day NSE trades at that is not in the
future, and a move from the previous accepted close no market could make.

A rejected bar must never move a watermark: callers check before they fold a bar in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from shared.config import Settings
from shared.contract.schemas import Bar
from shared.market import calendar

# Series the pipeline consumes; any other (symbol, interval) is rejected at the boundary.
SUPPORTED_SERIES = frozenset({("NIFTY", "1d"), ("NIFTY", "1m"), ("VIX", "1d")})
# No bar before the calendar's first year can be real for this system.
EARLIEST_OPEN_TIME = calendar.daily_open_time(calendar.sessions()[0])
MAX_SOURCE_CHARS = 64
# Minutes from 09:15 IST a minute bar may start in: pre-open (09:00) to the end of the evening
# special sessions (Muhurat trading, 2021-02-24's extension to 17:00). Days are not checked
# against the regular calendar: NSE also trades on special Saturdays the calendar lacks.
TRADING_WINDOW = (-15, 615)
# IST is UTC+05:30 all year (no daylight saving), so days and minutes are integer arithmetic:
# these checks run on every bar, twice, and zoneinfo conversions would dominate them.
IST_OFFSET_S = 5 * 3600 + 30 * 60
OPEN_S = (9 * 60 + 15) * 60  # 09:15 into the IST day


def _ist_day(epoch_s: int) -> int:
    """Days since 1970-01-01 of the IST date of ``epoch_s``."""
    return (epoch_s + IST_OFFSET_S) // 86400


class Rejected(ValueError):
    """A message that failed validation: dead-letter it with ``reason``, do not retry it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Limits:
    """Tolerances of the sanity rules (from Settings, so they can be tuned per deployment)."""

    max_future_s: int  # how far a bar's start may lie ahead of the clock
    # A band b allows prices in [anchor / (1 + b), anchor * (1 + b)] (symmetric in log terms).
    daily_band: dict[str, float]  # symbol -> band around the previous session's close
    minute_step_band: float  # band around the previous minute's close, same session

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            max_future_s=settings.validation_max_future_s,
            daily_band={
                "NIFTY": settings.validation_band_nifty,
                "VIX": settings.validation_band_vix,
            },
            minute_step_band=settings.validation_minute_step_band,
        )


class Reference(NamedTuple):
    """What was last accepted before this bar: the same series' last bar (open time and
    close) and, for minute bars, the close of the previous completed session."""

    last_open_time: int | None = None
    last_close: float | None = None
    previous_session_close: float | None = None


def bar_problems(
    bar: Bar, *, now_s: float, limits: Limits, reference: Reference | None = None
) -> list[str]:
    """Every reason ``bar`` is unusable; empty when it passes all rules."""
    problems = _shape_problems(bar)
    if problems:
        return problems  # the band and time rules assume finite, consistent prices
    problems += _time_problems(bar, now_s, limits)
    if reference is not None and not problems:
        problems += _band_problems(bar, limits, reference)
    return problems


def _shape_problems(bar: Bar) -> list[str]:
    problems: list[str] = []
    if (bar.symbol, bar.interval) not in SUPPORTED_SERIES:
        problems.append(f"unsupported series {bar.symbol} {bar.interval}")
    if len(bar.source) > MAX_SOURCE_CHARS:
        problems.append(f"source is {len(bar.source)} characters (limit {MAX_SOURCE_CHARS})")
    prices = {"open": bar.open, "high": bar.high, "low": bar.low, "close": bar.close}
    bad = [
        f"{name} is not a finite number ({value})"
        for name, value in prices.items()
        if not math.isfinite(value)
    ]
    if bad:
        return problems + bad
    problems += [
        f"{name} is not positive ({value})" for name, value in prices.items() if value <= 0
    ]
    if bar.volume is not None and not (math.isfinite(bar.volume) and bar.volume >= 0):
        problems.append(f"volume is not a finite non-negative number ({bar.volume})")
    if bar.high < bar.low:
        problems.append(f"high {bar.high} is below low {bar.low}")
    for name in ("open", "close"):
        if not bar.low <= prices[name] <= bar.high:
            problems.append(f"{name} {prices[name]} is outside low-high [{bar.low}, {bar.high}]")
    return problems


def _time_problems(bar: Bar, now_s: float, limits: Limits) -> list[str]:
    if bar.open_time < EARLIEST_OPEN_TIME:
        return [f"open_time {bar.open_time} is before the calendar's first session"]
    if bar.open_time > now_s + limits.max_future_s:
        ahead = bar.open_time - now_s
        return [f"open_time {bar.open_time} is {ahead:.0f} s in the future"]
    seconds_into_day = (bar.open_time + IST_OFFSET_S) % 86400
    if bar.interval == "1d":
        if seconds_into_day != OPEN_S:
            day = calendar.ist_date(bar.open_time)
            return [f"daily bar open_time {bar.open_time} is not 09:15 IST of {day}"]
        return []
    minute = (seconds_into_day - OPEN_S) // 60
    if bar.open_time % 60 or not TRADING_WINDOW[0] <= minute < TRADING_WINDOW[1]:
        return [f"minute bar at {bar.open_time} is not a minute start between 09:00 and 19:30 IST"]
    return []


def _band_problems(bar: Bar, limits: Limits, ref: Reference) -> list[str]:
    if bar.interval == "1d":
        band = limits.daily_band.get(bar.symbol)
        anchor, what = ref.last_close, "previous close"
    elif (
        ref.last_open_time is not None
        and ref.last_close is not None
        and _ist_day(ref.last_open_time) == _ist_day(bar.open_time)
    ):
        band, anchor, what = limits.minute_step_band, ref.last_close, "previous minute's close"
    else:  # the first minute of a session: against the last completed session's close
        band = limits.daily_band.get(bar.symbol)
        anchor, what = ref.previous_session_close, "previous session's close"
    if band is None or anchor is None or anchor <= 0:
        return []
    # The close must stay in the band; high and low in twice the band (in log terms), as
    # some feeds print a stray extreme (NSE's VIX lows) next to a sound close.
    close_factor = 1 + band
    wide_factor = close_factor * close_factor
    if (
        anchor / close_factor <= bar.close <= anchor * close_factor
        and bar.high <= anchor * wide_factor
        and bar.low >= anchor / wide_factor
    ):
        return []  # the common case, without building messages
    problems = []
    for name, price, factor in (
        ("close", bar.close, close_factor),
        ("high", bar.high, wide_factor),
        ("low", bar.low, wide_factor),
    ):
        if not anchor / factor <= price <= anchor * factor:
            move = price / anchor - 1
            problems.append(
                f"{name} {price} is {move:+.1%} from the {what} {anchor} (allowed x/÷{factor:.3g})"
            )
    return problems


def describe(bar: Bar) -> str:
    return f"{bar.symbol} {bar.interval} bar at {bar.open_time}"


Accepted = Mapping[tuple[str, str], tuple[int, float]]  # series -> (open_time, close)


def reference(accepted: Accepted, bar: Bar) -> Reference:
    """The ``Reference`` of ``bar`` given the last accepted bar of each series. Only an
    earlier bar is a reference: a bar at or before the last one (a re-sent replay) is left
    to the idempotency checks."""
    last = accepted.get((bar.symbol, bar.interval))
    if last is not None and last[0] >= bar.open_time:
        last = None
    daily = accepted.get((bar.symbol, "1d"))
    previous_session_close = None
    if bar.interval != "1d" and daily is not None:
        if _ist_day(daily[0]) < _ist_day(bar.open_time):
            previous_session_close = daily[1]
    return Reference(
        last_open_time=last[0] if last else None,
        last_close=last[1] if last else None,
        previous_session_close=previous_session_close,
    )


def accept(accepted: Accepted, bar: Bar) -> dict[tuple[str, str], tuple[int, float]]:
    """``accepted`` with ``bar`` as its series' last accepted bar (a new mapping: only an
    accepted bar moves the anchor of later ones)."""
    return {**accepted, (bar.symbol, bar.interval): (bar.open_time, bar.close)}
