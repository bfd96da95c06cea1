"""Live NIFTY / India VIX bars from Yahoo Finance.

On start it yields the cached final bars and backfills what is missing; then, while the
NSE market is open (and shortly after the close, until today's bars are final), it polls
every ``settings.yfinance_poll_s``. The newest row of a series is the forming bar
(``final=False``); it becomes final once a later row exists or its session has closed and
settled. Outside sessions it sleeps until the next open; ``close()`` interrupts any wait.
A failed or rate-limited feed, or a response that cannot be read, emits nothing (never old
bars as new), shows in ``status`` and is tried again at the next poll. A bad row is yielded as
``RejectedInput`` once, not again each time a later poll fetches it unchanged.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from services.ingest.sources.bar_cache import BarCache
from services.ingest.sources.base import RejectedInput
from services.ingest.sources.feed_status import FeedStatus
from services.ingest.sources.ordering import event_order
from services.ingest.sources.yf_fetch import (
    FetchStopped,
    GuardedFetcher,
    HistoryFetcher,
    YFinanceFetcher,
)
from services.ingest.sources.yf_frames import TICKERS, frame_to_bars
from shared.config import Settings
from shared.contract.schemas import Bar, Interval
from shared.logs import get_logger
from shared.market.calendar import (
    IST,
    daily_close_time,
    daily_open_time,
    is_market_open,
    is_session,
)

DAILY_SETTLE_S = 15 * 60  # Yahoo settles the NSE closing price a few minutes after 15:30
INTRADAY_SETTLE_S = 60
SETTLE_GIVE_UP_S = 2 * 3600  # stop polling for final bars this long after the close
LOOKBACK = {"1d": timedelta(days=1100), "1m": timedelta(days=7), "5m": timedelta(days=59)}
STALE_AFTER_S = {"1m": 180, "5m": 600}  # a forming bar older than this is not live

log = get_logger("ingest.yfinance")


@dataclass(frozen=True)
class Series:
    ticker: str
    interval: Interval

    @property
    def key(self) -> str:
        return f"{TICKERS[self.ticker]}:{self.interval}"


DEFAULT_SERIES = (Series("^NSEI", "1d"), Series("^INDIAVIX", "1d"), Series("^NSEI", "1m"))


def next_session_open(now: float) -> float:
    """Epoch seconds of the next 09:15 IST session open after ``now``."""
    day = datetime.fromtimestamp(now, IST).date()
    for offset in range(15):
        candidate = day + timedelta(days=offset)
        if is_session(candidate) and daily_open_time(candidate) > now:
            return float(daily_open_time(candidate))
    raise ValueError(f"no NSE session within 15 days of {day}")


class YFinanceSource:
    """The live source. ``fetcher`` defaults to the real yfinance one; ``clock`` (epoch
    seconds) and ``wait(seconds) -> stop requested`` default to wall time and ``stop.wait``."""

    name = "yfinance"

    def __init__(
        self,
        settings: Settings,
        fetcher: HistoryFetcher | None = None,
        *,
        series: tuple[Series, ...] = DEFAULT_SERIES,
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.time,
        wait: Callable[[float], bool] | None = None,
    ) -> None:
        self.settings = settings
        self.series = series
        self._stop = stop or threading.Event()
        self._clock = clock
        self._wait = wait or self._stop.wait
        self._status = FeedStatus()
        self._fetcher = GuardedFetcher(
            fetcher or YFinanceFetcher(settings),
            settings,
            self._status,
            clock=clock,
            wait=self._wait,
        )
        self._cache = BarCache(settings.yfinance_cache_dir / "bars")
        self._final: dict[Series, list[Bar]] = {}
        self._last: dict[Series, Bar] = {}  # newest bar emitted per series
        # Reasons (each naming the row's time and problem) of the rows rejected in the last
        # fetch of a series: a row still bad when fetched again is not yielded again.
        self._rejected: dict[Series, set[str]] = {}

    @property
    def status(self) -> dict:
        """Feed health for /health (JSON-ready, times in epoch seconds)."""
        return self._status.snapshot()

    def close(self) -> None:
        self._stop.set()

    def events(self) -> Iterator[Bar | RejectedInput]:
        try:
            yield from self._load_cache()
            yield from self._refresh()
            while not self._stop.is_set():
                now = self._clock()
                if self._should_poll(now):
                    due = now + self.settings.yfinance_poll_s
                else:
                    due = next_session_open(now)
                    self._status.update(state="closed")
                    log.info(
                        "yfinance_sleeping_until_open",
                        until=datetime.fromtimestamp(due, IST).isoformat(),
                    )
                self._status.update(next_poll_at=due)
                if self._wait(max(0.0, due - self._clock())):
                    return
                yield from self._refresh()
        except FetchStopped:
            return

    # -- internals ---------------------------------------------------------------------
    def _load_cache(self) -> Iterator[Bar]:
        cached: list[Bar] = []
        for s in self.series:
            bars = self._cache.load(TICKERS[s.ticker], s.interval)
            if bars:
                self._final[s] = bars
                self._last[s] = bars[-1]
                cached.extend(bars)
        log.info("yfinance_cache_loaded", bars=len(cached))
        yield from sorted(cached, key=event_order)

    def _should_poll(self, now: float) -> bool:
        if is_market_open(datetime.fromtimestamp(now, IST)):
            return True
        today = datetime.fromtimestamp(now, IST).date()
        pending = any(not b.final for b in self._last.values())
        return pending and is_session(today) and now < daily_close_time(today) + SETTLE_GIVE_UP_S

    def _window(self, s: Series, now: float) -> tuple[datetime, datetime]:
        moment = datetime.fromtimestamp(now, IST)
        earliest = moment - LOOKBACK[s.interval]
        last = self._last.get(s)
        start = datetime.fromtimestamp(last.open_time, IST) if last else earliest
        if s.interval == "1d":
            start = datetime.combine(start.date(), datetime.min.time(), IST)
            return start, datetime.combine(
                moment.date() + timedelta(days=1), datetime.min.time(), IST
            )
        return max(start, earliest), moment + timedelta(minutes=5)

    def _refresh(self) -> Iterator[Bar | RejectedInput]:
        """One fetch of every series; yields new bars (all series merged in event order)."""
        fresh: list[Bar] = []
        stale: list[str] = []
        failed: list[str] = []
        for s in self.series:
            now = self._clock()
            start, end = self._window(s, now)
            try:
                frame = self._fetcher.fetch_history(s.ticker, s.interval, start, end)
            except FetchStopped:
                raise
            except Exception:
                failed.append(s.key)
                continue  # logged and in status; the next poll tries again
            try:
                rows = frame_to_bars(frame, s.ticker, s.interval)
            except Exception as exc:  # a malformed response must not end the feed
                self._unusable(s, frame, exc)
                failed.append(s.key)
                continue
            yield from self._new_rejections(s, rows)
            bars = [r for r in rows if isinstance(r, Bar)]
            new, is_stale = self._select(s, bars, self._clock())
            if is_stale:
                stale.append(s.key)
            fresh.extend(new)
        if stale:
            log.warning(
                "yfinance_feed_stale",
                series=stale,
                reason="newest row is older than a live bar can be",
            )
        state = {"state": "failing"} if failed else {"state": "stale"} if stale else {}
        self._status.update(stale_series=stale, failed_series=failed, **state)
        yield from sorted(fresh, key=event_order)

    def _unusable(self, s: Series, frame: object, exc: Exception) -> None:
        error = f"{s.key}: unusable response: {type(exc).__name__}: {exc}"
        failures = self._status.consecutive_failures + 1
        self._status.update(state="failing", consecutive_failures=failures, last_error=error)
        log.error(
            "yfinance_response_unusable",
            series=s.key,
            error=error,
            consecutive_failures=failures,
            columns=[str(c) for c in getattr(frame, "columns", ())],
            index=type(getattr(frame, "index", None)).__name__,
        )

    def _new_rejections(self, s: Series, rows: list[Bar | RejectedInput]) -> list[RejectedInput]:
        """The rejected rows not already rejected (same time, same problem) last fetch."""
        rejected = [r for r in rows if isinstance(r, RejectedInput)]
        before = self._rejected.get(s, set())
        self._rejected[s] = {r.reason for r in rejected}
        return [r for r in rejected if r.reason not in before]

    def _select(self, s: Series, bars: list[Bar], now: float) -> tuple[list[Bar], bool]:
        """Marks the forming bar, keeps what was not emitted yet, updates the cache."""
        if not bars:
            return [], False
        newest = bars[-1]
        if not self._settled(newest, now):
            bars[-1] = newest = newest.model_copy(update={"final": False})
        stale = (
            not newest.final
            and s.interval != "1d"
            and (now - (newest.open_time + 60 * int(s.interval[:-1])) > STALE_AFTER_S[s.interval])
        )
        if stale:
            bars.pop()  # a frozen "forming" bar would pass an old price off as live
        last = self._last.get(s)
        new = [
            b
            for b in bars
            if last is None
            or b.open_time > last.open_time
            or (b.open_time == last.open_time and not last.final and b != last)
        ]
        if new:
            self._last[s] = new[-1]
            finals = [b for b in new if b.final]
            if finals:
                self._final[s] = [*self._final.get(s, []), *finals]
                self._cache.store(TICKERS[s.ticker], s.interval, self._final[s])
            self._status.update(
                series={
                    **self._status.series,
                    s.key: {
                        "last_open_time": new[-1].open_time,
                        "final": new[-1].final,
                        "received_at": now,
                    },
                }
            )
        return new, stale

    @staticmethod
    def _settled(bar: Bar, now: float) -> bool:
        """Whether the newest row of a series can no longer change."""
        day: date = datetime.fromtimestamp(bar.open_time, IST).date()
        settle = DAILY_SETTLE_S if bar.interval == "1d" else INTRADAY_SETTLE_S
        return now >= daily_close_time(day) + settle
