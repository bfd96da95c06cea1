"""The live yfinance source against recorded Yahoo responses (Yahoo is not reachable here).

Frames under tests/fixtures/yfinance/ were produced by the real yfinance from chart API
responses built out of data/ (see build.py); one test runs the real yfinance HTTP path.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yfinance.data
from structlog.testing import capture_logs

from services.ingest.sources.base import RejectedInput
from services.ingest.sources.rate_limit import TokenBucket
from services.ingest.sources.yf_fetch import YFinanceFetcher
from services.ingest.sources.yf_frames import frame_to_bars
from services.ingest.sources.yfinance_source import Series, YFinanceSource
from shared.config import Settings
from shared.contract.schemas import Bar
from shared.market.calendar import IST, daily_open_time
from tests.fixtures.yfinance.recorded_http import HERE, recorded_session
from tests.narrowing import every

NIFTY_1D, VIX_1D = Series("^NSEI", "1d"), Series("^INDIAVIX", "1d")
NIFTY_1M, NIFTY_5M = Series("^NSEI", "1m"), Series("^NSEI", "5m")


def ist(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=IST).timestamp()


def recorded_frame(ticker: str, interval: str) -> pd.DataFrame:
    frame = pd.read_csv(HERE / f"history_{ticker.lstrip('^')}_{interval}.csv", index_col=0)
    frame.index = pd.to_datetime(frame.index, utc=True).tz_convert("Asia/Kolkata")
    return frame


class FakeClock:
    """Epoch-seconds clock whose waits pass instantly; ``stop_at`` ends the run."""

    def __init__(self, start: float, stop_at: float | None = None) -> None:
        self.now = start
        self.stop_at = stop_at
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        self.now += seconds
        return self.stop_at is not None and self.now >= self.stop_at


class RecordedFrames:
    """The fetch seam replaying recorded frames: rows in [start, end) that had started by
    the clock's now, like Yahoo live. ``fail`` raises instead; ``cut`` hides later rows."""

    def __init__(
        self, clock: FakeClock, fail: Exception | None = None, cut: float | None = None
    ) -> None:
        self.clock = clock
        self.fail = fail
        self.cut = cut
        self.calls: list[tuple[str, str, datetime, float]] = []

    def fetch_history(
        self, symbol: str, interval: str, start: datetime, end: datetime
    ) -> pd.DataFrame:
        self.calls.append((symbol, interval, start, self.clock.now))
        if self.fail:
            raise self.fail
        frame = recorded_frame(symbol, interval)
        limit = min(self.clock.now, self.cut or self.clock.now)
        keep = (frame.index >= start) & (frame.index < end)
        keep &= frame.index.map(lambda t: t.timestamp() <= limit)
        return frame[keep]


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        yfinance_cache_dir=tmp_path / "yf",
        yfinance_min_interval_s=2.0,
        yfinance_poll_s=60.0,
        yfinance_max_retries=4,
    )
    values.update(overrides)
    return Settings(**values)


def run(source: YFinanceSource) -> list[Bar | RejectedInput]:
    return list(source.events())


# -- conversion ------------------------------------------------------------------------
def test_recorded_daily_frame_becomes_bars_keyed_at_0915() -> None:
    events = every(frame_to_bars(recorded_frame("^NSEI", "1d"), "^NSEI", "1d"), Bar)
    assert len(events) == 249
    first, last = events[0], events[-1]
    assert first.open_time == daily_open_time(datetime(2024, 7, 1).date())
    assert (first.symbol, first.interval, first.close, first.final) == (
        "NIFTY",
        "1d",
        24141.95,
        True,
    )
    assert (
        last.open_time == daily_open_time(datetime(2025, 6, 30).date()) and last.close == 25517.05
    )


def test_nan_and_garbage_rows_are_rejected_not_raised() -> None:
    frame = recorded_frame("^NSEI", "1m").iloc[:6].copy()
    frame.iloc[1, frame.columns.get_loc("Close")] = float("nan")
    frame.iloc[2, frame.columns.get_loc("High")] = 1.0
    frame.iloc[3, frame.columns.get_loc("Low")] = -5.0
    stamps = list(frame.index)
    stamps[5] += pd.Timedelta(seconds=7)  # a "live" row off the minute grid
    frame.index = pd.DatetimeIndex(stamps)
    events = frame_to_bars(frame, "^NSEI", "1m")
    reasons = [e.reason for e in events if isinstance(e, RejectedInput)]
    assert [type(e).__name__ for e in events] == [
        "Bar",
        "RejectedInput",
        "RejectedInput",
        "RejectedInput",
        "Bar",
        "RejectedInput",
    ]
    assert "missing Close" in reasons[0] and "below low" in reasons[1]
    assert "non-positive" in reasons[2] and "not on the 1m grid" in reasons[3]
    missing_close = events[1]
    assert isinstance(missing_close, RejectedInput) and b'"Close": null' in missing_close.raw


# -- the real yfinance code path -----------------------------------------------------------
def test_real_yfinance_over_recorded_http_429_then_success(tmp_path: Path) -> None:
    yfinance.data.YfData.cache_get.cache_clear()
    session, yahoo = recorded_session({"^NSEI": [429] * 4})
    settings = make_settings(tmp_path)
    clock = FakeClock(ist("2025-06-30T20:00:00"), stop_at=ist("2025-07-01T00:00:00"))
    source = YFinanceSource(
        settings,
        YFinanceFetcher(settings, session=session),
        series=(NIFTY_1D,),
        clock=clock,
        wait=clock.wait,
    )
    with capture_logs() as logs:
        events = run(source)
    bars = [e for e in events if isinstance(e, Bar)]
    assert len(bars) > 200 and all(b.final for b in bars)
    assert bars[-1].open_time == daily_open_time(datetime(2025, 6, 30).date())
    assert bars == frame_to_bars(recorded_frame("^NSEI", "1d").loc["2022":], "^NSEI", "1d")
    assert yahoo.script["^NSEI"] == [] and "fc.yahoo.com/" in yahoo.requests
    failures = [x for x in logs if x["event"] == "yfinance_fetch_failed"]
    assert failures and all(x["rate_limited"] for x in failures)
    backoffs = clock.waits[: len(failures)]
    for k, waited in enumerate(backoffs):  # exponential, plus up to 1 s of jitter
        assert 2.0 * 2**k <= waited <= 2.0 * 2**k + 1.0
    status = source.status
    assert status["consecutive_failures"] == 0 and status["last_success_at"] == clock.now - sum(
        clock.waits[len(failures) :]
    )
    assert "YFRateLimitError" in status["last_error"]


# -- rate limit, failures, staleness -----------------------------------------------------------
def test_token_bucket_spaces_requests() -> None:
    clock = FakeClock(0.0)
    bucket = TokenBucket(2.0, burst=2, clock=clock, wait=clock.wait)
    for _ in range(5):
        assert bucket.acquire()
    assert clock.waits == [2.0, 2.0, 2.0]


def test_requests_respect_min_interval(tmp_path: Path) -> None:
    clock = FakeClock(ist("2025-06-30T10:00:00"), stop_at=ist("2025-06-30T10:05:00"))
    fetcher = RecordedFrames(clock)
    run(
        YFinanceSource(
            make_settings(tmp_path, yfinance_min_interval_s=7.5),
            fetcher,
            series=(NIFTY_1D, VIX_1D),
            clock=clock,
            wait=clock.wait,
        )
    )
    times = [c[3] for c in fetcher.calls]
    assert len(times) >= 6
    assert all(b - a >= 7.5 for a, b in itertools.pairwise(times))


def test_failing_feed_emits_nothing_and_says_why(tmp_path: Path) -> None:
    clock = FakeClock(ist("2025-06-30T10:00:00"), stop_at=ist("2025-06-30T10:00:30"))
    fetcher = RecordedFrames(clock, fail=ConnectionError("connection reset by peer"))
    source = YFinanceSource(
        make_settings(tmp_path), fetcher, series=(NIFTY_1D,), clock=clock, wait=clock.wait
    )
    with capture_logs() as logs:
        assert run(source) == []
    status = source.status
    assert status["state"] == "failing" and status["last_success_at"] is None
    assert status["consecutive_failures"] == 4 and "connection reset" in status["last_error"]
    assert len(fetcher.calls) == 4
    down = [x for x in logs if x["event"] == "yfinance_feed_down"]
    assert down and down[0]["log_level"] == "error" and down[0]["symbol"] == "^NSEI"


def test_frozen_feed_is_not_passed_off_as_live(tmp_path: Path) -> None:
    clock = FakeClock(ist("2023-01-31T10:00:30"), stop_at=ist("2023-01-31T10:00:40"))
    fetcher = RecordedFrames(clock, cut=ist("2023-01-31T09:50:00"))
    source = YFinanceSource(
        make_settings(tmp_path), fetcher, series=(NIFTY_1M,), clock=clock, wait=clock.wait
    )
    bars = [e for e in run(source) if isinstance(e, Bar)]
    assert all(b.final for b in bars)
    assert bars[-1].open_time == ist("2023-01-31T09:49:00")
    assert source.status["state"] == "stale" and source.status["stale_series"] == ["NIFTY:1m"]


# -- live behaviour ------------------------------------------------------------------------
def test_intraday_forming_bar_then_final(tmp_path: Path) -> None:
    clock = FakeClock(ist("2023-01-31T10:00:30"), stop_at=ist("2023-01-31T10:03:00"))
    source = YFinanceSource(
        make_settings(tmp_path),
        RecordedFrames(clock),
        series=(NIFTY_1M, NIFTY_5M),
        clock=clock,
        wait=clock.wait,
    )
    bars = [e for e in run(source) if isinstance(e, Bar)]
    one = [b for b in bars if b.interval == "1m"]
    assert one[0].open_time == ist("2023-01-30T09:15:00")
    ten = [b.final for b in one if b.open_time == ist("2023-01-31T10:00:00")]
    assert ten == [False, True]
    finals = [b.open_time for b in one if b.final]
    assert len(finals) == len(set(finals)) == 375 + 47
    assert [b.final for b in one[-1:]] == [False]
    five = [b for b in bars if b.interval == "5m" and b.open_time == ist("2023-01-31T10:00:00")]
    assert [b.final for b in five] == [False]
    ends = [b.open_time + (60 if b.interval == "1m" else 300) for b in bars if b.final]
    assert ends == sorted(ends)  # completed bars in event order across series


def test_daily_bar_forms_then_settles_then_sleeps_until_next_open(tmp_path: Path) -> None:
    clock = FakeClock(ist("2025-06-30T15:00:00"), stop_at=ist("2025-07-01T09:00:00"))
    source = YFinanceSource(
        make_settings(tmp_path),
        RecordedFrames(clock),
        series=(NIFTY_1D, VIX_1D),
        clock=clock,
        wait=clock.wait,
    )
    bars = [e for e in run(source) if isinstance(e, Bar)]
    today = daily_open_time(datetime(2025, 6, 30).date())
    nifty = [b.final for b in bars if b.symbol == "NIFTY" and b.open_time == today]
    vix = [b.final for b in bars if b.symbol == "VIX" and b.open_time == today]
    assert nifty == [False, True] and vix == [False, True]
    assert clock.now == ist("2025-07-01T09:15:00")  # slept until the next open
    assert source.status["state"] == "closed"


def test_restart_reads_the_cache_instead_of_refetching(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    clock = FakeClock(ist("2025-06-27T20:00:00"), stop_at=ist("2025-06-27T21:00:00"))
    first = run(
        YFinanceSource(
            settings, RecordedFrames(clock), series=(NIFTY_1D,), clock=clock, wait=clock.wait
        )
    )
    clock2 = FakeClock(ist("2025-06-30T20:00:00"), stop_at=ist("2025-06-30T21:00:00"))
    fetcher = RecordedFrames(clock2)
    second = every(
        run(YFinanceSource(settings, fetcher, series=(NIFTY_1D,), clock=clock2, wait=clock2.wait)),
        Bar,
    )
    assert second[: len(first)] == first  # cached bars replayed (the bus drops duplicates)
    assert [b.open_time for b in second[len(first) :]] == [
        daily_open_time(datetime(2025, 6, 30).date())
    ]
    assert fetcher.calls[0][2] == datetime(2025, 6, 27, tzinfo=IST)


def test_closed_market_wait_is_interruptible(tmp_path: Path) -> None:
    stop = threading.Event()
    waiting = threading.Event()
    asked: list[float] = []

    def wait(seconds: float) -> bool:
        asked.append(seconds)
        waiting.set()
        return stop.wait(seconds)

    clock = FakeClock(ist("2025-06-28T12:00:00"))  # a Saturday
    source = YFinanceSource(
        make_settings(tmp_path, yfinance_min_interval_s=0.0),
        RecordedFrames(clock),
        series=(NIFTY_1D,),
        stop=stop,
        clock=clock,
        wait=wait,
    )
    thread = threading.Thread(target=run, args=(source,))
    thread.start()
    assert waiting.wait(10)
    source.close()
    thread.join(10)
    assert not thread.is_alive()
    assert asked == [pytest.approx(ist("2025-06-30T09:15:00") - ist("2025-06-28T12:00:00"))]


# -- malformed responses and repeated bad rows -------------------------------------------------
class AlteredUntil:
    """Wraps RecordedFrames: before ``until`` (clock time) every frame comes back as
    ``alter`` makes it (a broken response, a row still forming, ...)."""

    def __init__(
        self, inner: RecordedFrames, until: float, alter: Callable[[pd.DataFrame], pd.DataFrame]
    ) -> None:
        self.inner = inner
        self.until = until
        self.alter = alter
        self.calls = inner.calls

    def fetch_history(
        self, symbol: str, interval: str, start: datetime, end: datetime
    ) -> pd.DataFrame:
        frame = self.inner.fetch_history(symbol, interval, start, end)
        return frame if self.inner.clock.now >= self.until else self.alter(frame)


BREAKS: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "naive_index": lambda frame: frame.tz_localize(None),
    "missing_column": lambda frame: frame.drop(columns=["Close"]),
}


def forming_without_price(at: float) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """The newest row is the minute at ``at``, still without a close (NaN), as Yahoo serves
    a minute that is still forming."""

    def alter(frame: pd.DataFrame) -> pd.DataFrame:
        stamps = frame.index.map(lambda t: t.timestamp()).to_numpy()
        frame = frame[stamps <= at].copy()
        frame.loc[stamps[stamps <= at] == at, "Close"] = float("nan")
        return frame

    return alter


@pytest.mark.parametrize(
    ("breaks", "says"),
    [("naive_index", "not tz-aware"), ("missing_column", "lacks columns ['Close']")],
)
def test_malformed_response_is_recorded_and_polling_goes_on(
    tmp_path: Path, breaks: str, says: str
) -> None:
    clock = FakeClock(ist("2023-01-31T10:00:30"), stop_at=ist("2023-01-31T10:03:00"))
    fetcher = AlteredUntil(
        RecordedFrames(clock), until=ist("2023-01-31T10:01:00"), alter=BREAKS[breaks]
    )
    seen: list[dict] = []

    def wait(seconds: float) -> bool:
        seen.append(source.status)
        return clock.wait(seconds)

    source = YFinanceSource(
        make_settings(tmp_path), fetcher, series=(NIFTY_1M,), clock=clock, wait=wait
    )
    with capture_logs() as logs:
        bars = [e for e in run(source) if isinstance(e, Bar)]  # does not raise
    after_first_poll = next(s for s in seen if s["next_poll_at"] is not None)
    assert after_first_poll["state"] == "failing"
    assert after_first_poll["failed_series"] == ["NIFTY:1m"]
    assert "unusable response" in after_first_poll["last_error"]
    assert says in after_first_poll["last_error"]
    unusable = [x for x in logs if x["event"] == "yfinance_response_unusable"]
    assert len(unusable) == 1 and unusable[0]["log_level"] == "error"
    assert len(fetcher.calls) == 3  # kept polling: the two later polls are fine
    assert bars and bars[-1].open_time == ist("2023-01-31T10:02:00")
    assert source.status["state"] == "ok" and source.status["failed_series"] == []


def test_a_bad_row_fetched_again_is_rejected_once_and_its_good_version_passes(
    tmp_path: Path,
) -> None:
    clock = FakeClock(ist("2023-01-31T10:00:30"), stop_at=ist("2023-01-31T10:03:00"))
    ten = ist("2023-01-31T10:00:00")
    fetcher = AlteredUntil(
        RecordedFrames(clock), until=ist("2023-01-31T10:02:00"), alter=forming_without_price(ten)
    )
    source = YFinanceSource(
        make_settings(tmp_path), fetcher, series=(NIFTY_1M,), clock=clock, wait=clock.wait
    )
    events = run(source)
    polls_while_bad = [c for c in fetcher.calls if c[3] < fetcher.until]
    assert len(polls_while_bad) == 2  # the bad row was fetched twice
    rejected = [e for e in events if isinstance(e, RejectedInput)]
    assert len(rejected) == 1
    assert "2023-01-31T10:00:00+05:30" in rejected[0].reason
    assert "missing Close" in rejected[0].reason
    good = recorded_frame("^NSEI", "1m").loc["2023-01-31 10:00:00+05:30", "Close"]
    ten_bars = [e for e in events if isinstance(e, Bar) and e.open_time == ten]
    assert [(b.final, b.close) for b in ten_bars] == [(True, good)]
