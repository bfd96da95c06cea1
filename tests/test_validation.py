"""The shared market-sanity rules (shared.market.validation), without Redis."""

from __future__ import annotations

import time
from datetime import date

import pytest

from services.ingest.sources.file_replay import ReplayWindow, iter_bars_fast
from shared.config import Settings
from shared.contract.schemas import Bar
from shared.market import calendar, validation
from tests.pipeline import DATA_DIR

LIMITS = validation.Limits.from_settings(Settings())
DAY = date(2021, 3, 2)
NOW = calendar.daily_close_time(DAY) + 3600


def minute(m: int, **prices: float) -> Bar:
    values = {"open": 15000.0, "high": 15010.0, "low": 14990.0, "close": 15005.0, **prices}
    return Bar.model_construct(
        symbol="NIFTY",
        interval="1m",
        open_time=calendar.daily_open_time(DAY) + 60 * m,
        open=values["open"],
        high=values["high"],
        low=values["low"],
        close=values["close"],
        volume=None,
        final=True,
        source="test",
    )


def problems(bar: Bar, accepted: validation.Accepted | None = None) -> list[str]:
    ref = validation.reference(accepted or {}, bar)
    return validation.bar_problems(bar, now_s=NOW, limits=LIMITS, reference=ref)


@pytest.mark.parametrize(
    ("bar", "expected"),
    [
        (minute(1, close=float("nan")), "close is not a finite number"),
        (minute(1, high=float("inf")), "high is not a finite number"),
        (minute(1, low=0.0), "low is not positive"),
        (minute(1, open=-5.0, low=-5.0), "open is not positive"),
        (minute(1, high=14000.0), "high 14000.0 is below low"),
        (minute(1, close=15020.0), "close 15020.0 is outside low-high"),
        (minute(1).model_copy(update={"open_time": 0}), "before the calendar's first session"),
        (minute(1).model_copy(update={"open_time": NOW + 86400}), "s in the future"),
        (minute(1).model_copy(update={"open_time": minute(1).open_time + 7}), "minute start"),
        (minute(-600), "minute start between 09:00 and 19:30"),
        (minute(1).model_copy(update={"interval": "5m"}), "unsupported series NIFTY 5m"),
        (minute(1).model_copy(update={"source": "x" * 1000}), "source is 1000 characters"),
        (minute(1).model_copy(update={"volume": -1.0}), "volume is not a finite non-negative"),
    ],
)
def test_each_rule_names_its_reason(bar: Bar, expected: str) -> None:
    found = problems(bar)
    assert any(expected in p for p in found), found


def test_a_sound_minute_passes_and_bands_follow_the_last_accepted_bar() -> None:
    assert problems(minute(1)) == []
    accepted = {("NIFTY", "1d"): (calendar.daily_open_time(date(2021, 3, 1)), 15000.0)}
    # first minute of the session: against the previous session's close, 25 % band
    assert (
        problems(minute(0, open=15000.0, high=15000.0, low=15000.0, close=15000.0), accepted) == []
    )
    spike = minute(0, open=1e12, high=1e12, low=1e12, close=1e12)
    assert "from the previous session's close" in problems(spike, accepted)[0]
    tiny = minute(0, open=1.0, high=1.0, low=1.0, close=1.0)
    assert problems(tiny, accepted)
    # later minutes: against the previous accepted minute, 5 % band
    accepted = validation.accept(accepted, minute(0))
    assert problems(minute(1), accepted) == []
    jump = minute(1, open=16500.0, high=16510.0, low=16490.0, close=16505.0)
    assert "previous minute's close" in problems(jump, accepted)[0]


def test_daily_bar_must_be_keyed_at_0915_ist() -> None:
    bar = Bar(
        symbol="VIX",
        interval="1d",
        open_time=calendar.daily_open_time(DAY) + 60,
        open=20.0,
        high=21.0,
        low=19.0,
        close=20.5,
        source="test",
    )
    assert "not 09:15 IST" in problems(bar)[0]


@pytest.mark.slow
def test_no_real_bar_of_the_data_files_is_rejected() -> None:
    """The rules are tolerances, not a model: the recorded history passes them (except one
    VIX day NSE published with its close outside its own low-high range)."""
    accepted: validation.Accepted = {}
    rejected, seen = [], 0
    window = ReplayWindow(daily_from="2008-01-01", intraday_from="2021-01-01")
    for event in iter_bars_fast(DATA_DIR, window):
        if not isinstance(event, Bar):
            continue
        seen += 1
        found = validation.bar_problems(
            event,
            now_s=time.time(),
            limits=LIMITS,
            reference=validation.reference(accepted, event),
        )
        if found:
            rejected.append((event.symbol, calendar.ist_date(event.open_time), found))
        else:
            accepted = validation.accept(accepted, event)
    assert seen > 190_000
    assert [(s, str(d)) for s, d, _ in rejected] == [("VIX", "2013-08-22")], rejected[:5]
