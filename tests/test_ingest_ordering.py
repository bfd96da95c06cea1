"""Event order at a tie: a session's last minute ends at the close, when its daily bars
happen too; the minute must come first or the features worker drops it."""

from __future__ import annotations

from datetime import date

import pytest

from services.ingest.sources.base import RejectedInput
from services.ingest.sources.file_replay import FileReplaySource, ReplayWindow, iter_bars_fast
from services.ingest.sources.ordering import event_order
from services.ingest.sources.pacing import event_time
from shared.contract.schemas import Bar
from shared.market.calendar import daily_close_time, daily_open_time, ist_date
from tests.conftest import DATA_DIR

WINDOW = ReplayWindow(daily_from="2022-12-20", intraday_from="2022-12-27", end="2022-12-30")
SESSIONS = [date(2022, 12, d) for d in (27, 28, 29, 30)]


def _bars() -> list[Bar]:
    return [
        e for e in FileReplaySource(DATA_DIR, WINDOW).events() if not isinstance(e, RejectedInput)
    ]


@pytest.mark.slow
def test_replayed_session_yields_its_last_minute_before_its_daily_bars() -> None:
    bars = _bars()
    for day in SESSIONS:
        minutes = [
            i for i, b in enumerate(bars) if b.interval == "1m" and ist_date(b.open_time) == day
        ]
        daily = {
            b.symbol: i
            for i, b in enumerate(bars)
            if b.interval == "1d" and b.open_time == daily_open_time(day)
        }
        last_minute = bars[minutes[-1]]
        assert event_time(last_minute) == daily_close_time(day)  # a real tie
        assert minutes[-1] < daily["VIX"] < daily["NIFTY"], day
    assert [event_time(b) for b in bars] == sorted(event_time(b) for b in bars)


@pytest.mark.slow
def test_iter_bars_fast_has_the_replay_order() -> None:
    fast = [e for e in iter_bars_fast(DATA_DIR, WINDOW) if not isinstance(e, RejectedInput)]
    assert fast == _bars()


def test_live_sort_key_puts_intraday_before_daily_and_vix_before_nifty() -> None:
    day = date(2025, 6, 30)
    close = daily_close_time(day)

    def bar(symbol: str, interval: str, open_time: int) -> Bar:
        return Bar(
            symbol=symbol,
            interval=interval,
            open_time=open_time,
            open=100.0,
            high=101.0,
            low=99.0,
            close=100.5,
            source="test",
        )

    nifty_1d = bar("NIFTY", "1d", daily_open_time(day))
    vix_1d = bar("VIX", "1d", daily_open_time(day))
    last_1m, last_5m = bar("NIFTY", "1m", close - 60), bar("NIFTY", "5m", close - 300)
    ordered = sorted([nifty_1d, vix_1d, last_5m, last_1m], key=event_order)
    assert ordered == [last_1m, last_5m, vix_1d, nifty_1d]
