"""NSE sessions (Asia/Kolkata, 09:15-15:30) and the NIFTY weekly expiry calendar.

Sessions come from pandas_market_calendars' maintained NSE calendar. Weekly expiry is the
Thursday of each week until 2025-08-31 and the Tuesday from 2025-09-01 on; when that day is
not a regular session (a holiday, or a Diwali Muhurat session), expiry moves to the previous
regular session.

An expiry settles at its day's close. So the target of a snapshot depends on when it is
taken: during a session the target is the first expiry on or after that day (on an expiry
day: that day, 0 DTE); a snapshot taken at a session's close (every daily row, live or in
training) targets the first expiry strictly after that day.
"""

from __future__ import annotations

import bisect
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import pandas as pd
import pandas_market_calendars as mcal

IST = ZoneInfo("Asia/Kolkata")
SESSION_OPEN = time(9, 15)
SESSION_CLOSE = time(15, 30)
SESSION_MINUTES = 375
TRADING_DAYS_PER_YEAR = 252
TUESDAY_EXPIRY_FROM = date(2025, 9, 1)
_FIRST = "2005-01-01"
# Two years past today, so a long-running service never walks off the end (the library's
# NSE holiday list may stop earlier; beyond it every weekday counts as a session).
_LAST = f"{date.today().year + 2}-12-31"


# Full weekend sessions NSE held that the calendar library does not list: the Union Budget
# days (2025-02-01 a Saturday, 2026-02-01 a Sunday; data/SOURCES.md §7 has the 1-minute bars
# of the latter). They move no expiry (the weekly expiry is a weekday).
SPECIAL_SESSIONS = frozenset({date(2025, 2, 1), date(2026, 2, 1)})


@lru_cache(maxsize=1)
def sessions() -> tuple[date, ...]:
    """Every NSE session date: the calendar library's, plus ``SPECIAL_SESSIONS``."""
    days = {d.date() for d in mcal.get_calendar("NSE").valid_days(_FIRST, _LAST)}
    return tuple(sorted(days | SPECIAL_SESSIONS))


@lru_cache(maxsize=1)
def _session_set() -> frozenset[date]:
    return frozenset(sessions())


def is_session(day: date) -> bool:
    return day in _session_set()


def previous_session(day: date) -> date:
    """The last session on or before ``day``."""
    all_days = sessions()
    i = bisect.bisect_right(all_days, day) - 1
    if i < 0:
        raise ValueError(f"{day} is before the calendar's first session")
    return all_days[i]


def sessions_between(after: date, until: date) -> int:
    """Number of sessions in (after, until]."""
    all_days = sessions()
    return bisect.bisect_right(all_days, until) - bisect.bisect_right(all_days, after)


def missing_sessions(after: date, before: date) -> list[date]:
    """Sessions strictly between two dates: a gap when consecutive bars skip them."""
    all_days = sessions()
    lo, hi = bisect.bisect_right(all_days, after), bisect.bisect_left(all_days, before)
    return list(all_days[lo:hi])


def expiry_weekday(day: date) -> int:
    return 1 if day >= TUESDAY_EXPIRY_FROM else 3  # Tuesday / Thursday


@lru_cache(maxsize=1)
def muhurat_sessions() -> frozenset[date]:
    """Diwali Muhurat sessions: about an hour of evening (2025: afternoon) trading that the
    calendar library lists as a session. No regular session, so no expiry falls on one (NSE
    moved the weekly expiry of 2021-11-04 to 11-03 and of 2025-10-21 to 10-20)."""
    schedule = mcal.get_calendar("NSE").schedule(_FIRST, _LAST)
    opens = schedule["market_open"].dt.tz_convert(IST)
    return frozenset(
        day.date() for day, o in zip(schedule.index, opens, strict=True) if o.hour >= 12
    )


def _expiry_on_or_before(day: date) -> date:
    """The last regular session (not a Muhurat one) on or before ``day``."""
    expiry = previous_session(day)
    while expiry in muhurat_sessions():
        expiry = previous_session(expiry - timedelta(days=1))
    return expiry


@lru_cache(maxsize=8192)
def next_weekly_expiry(day: date) -> date:
    """The first weekly expiry on or after ``day`` (a holiday or a Muhurat session moves it
    to the previous regular session)."""
    for offset in range(21):
        nominal = day + timedelta(days=offset)
        if nominal.weekday() != expiry_weekday(nominal):
            continue
        expiry = _expiry_on_or_before(nominal)
        if expiry >= day:
            return expiry
    raise ValueError(f"no weekly expiry found after {day}")


def expiry_after_close(day: date) -> date:
    """The weekly expiry a snapshot taken at ``day``'s close targets: the first one strictly
    after ``day`` (an expiry day's own expiry has settled at that close)."""
    return next_weekly_expiry(day + timedelta(days=1))


def target_expiry(day: date, *, at_close: bool) -> date:
    """The expiry a snapshot of ``day`` targets: during its session (``at_close=False``)
    the first on or after ``day``; at its close the first after it."""
    return expiry_after_close(day) if at_close else next_weekly_expiry(day)


def days_to_expiry(day: date, *, at_close: bool) -> tuple[date, int, int]:
    """(target expiry, calendar days to it, sessions to it) of a snapshot of ``day`` taken
    during its session or at its close (see ``target_expiry``)."""
    expiry = target_expiry(day, at_close=at_close)
    return expiry, (expiry - day).days, sessions_between(day, expiry)


def session_bounds(day: date) -> tuple[datetime, datetime]:
    return datetime.combine(day, SESSION_OPEN, IST), datetime.combine(day, SESSION_CLOSE, IST)


def daily_open_time(day: date) -> int:
    """Epoch seconds a daily bar of ``day`` is keyed by (09:15 IST)."""
    return int(session_bounds(day)[0].timestamp())


def daily_close_time(day: date) -> int:
    return int(session_bounds(day)[1].timestamp())


def next_session(day: date) -> date:
    """The first session strictly after ``day``."""
    all_days = sessions()
    i = bisect.bisect_right(all_days, day)
    if i == len(all_days):
        raise ValueError(f"{day} is past the calendar's last session")
    return all_days[i]


def beyond_next_session(at_s: int, clock_s: int) -> bool:
    """Whether the IST day of ``at_s`` (a bar's open, a chain's snapshot) is past the first
    session after ``clock_s``'s day: no record of a series can be that far ahead of the
    series' newest (False past the calendar's end: it cannot judge there)."""
    day, newest = ist_date(at_s), ist_date(clock_s)
    if day <= newest:
        return False
    try:
        return day > next_session(newest)
    except ValueError:
        return False


def next_bar_due(kind: str, as_of: int) -> int:
    """When data newer than a block ending at ``as_of`` can first exist (epoch seconds): the
    next minute's close inside a session, else the next session's first minute close
    (``intraday``); the next session's close (``daily``). Evenings, weekends and holidays
    therefore do not make the last data of a session look stale."""
    day = ist_date(as_of - 1)  # as_of is a close: 15:30 still belongs to its session
    if kind == "daily":
        return daily_close_time(next_session(day))
    if is_session(day):
        first_close = daily_open_time(day) + 60
        if as_of < first_close:
            return first_close
        if as_of + 60 <= daily_close_time(day):
            return as_of + 60
    return daily_open_time(next_session(day)) + 60


def ist_date(epoch_s: int) -> date:
    return datetime.fromtimestamp(epoch_s, IST).date()


def minute_of_session(epoch_s: int) -> int:
    """Minutes since 09:15 IST of a bar's start time (may be negative or past 375)."""
    moment = datetime.fromtimestamp(epoch_s, IST)
    return (moment.hour * 60 + moment.minute) - (9 * 60 + 15)


def is_market_open(moment: datetime) -> bool:
    local = moment.astimezone(IST)
    return is_session(local.date()) and SESSION_OPEN <= local.time() < SESSION_CLOSE


def to_date(value: str | date | pd.Timestamp) -> date:
    if isinstance(value, str) and len(value) == 10:
        return date.fromisoformat(value)
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    return pd.Timestamp(value).date()


def ist_iso(epoch_s: int) -> str:
    """A market time (epoch seconds) as ISO 8601 in IST, e.g. 2026-01-22T10:15:00+05:30."""
    return datetime.fromtimestamp(epoch_s, IST).isoformat()
