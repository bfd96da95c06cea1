"""Fetching price history from Yahoo: the seam tests replay recorded data through, the real
yfinance implementation, and a wrapper adding the rate limit, retries and feed status."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

import pandas as pd
import yfinance as yf
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_not_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)
from yfinance.exceptions import YFPricesMissingError, YFRateLimitError

from services.ingest.sources.feed_status import FeedStatus
from services.ingest.sources.rate_limit import TokenBucket
from shared.config import Settings
from shared.logs import get_logger

REQUEST_TIMEOUT_S = 10.0
BACKOFF_INITIAL_S = 2.0
BACKOFF_MAX_S = 120.0
BACKOFF_JITTER_S = 1.0

log = get_logger("ingest.yfinance")


class HistoryFetcher(Protocol):
    def fetch_history(
        self, symbol: str, interval: str, start: datetime, end: datetime
    ) -> pd.DataFrame:
        """Rows of ``symbol`` (a Yahoo ticker) in [start, end) as ``yf.Ticker.history``
        returns them: tz-aware index, columns Open High Low Close Volume ... ; empty when
        Yahoo has no rows in the window. Raises on any failure."""
        ...


class YFinanceFetcher:
    """The real fetcher: ``yf.Ticker(symbol).history``. yfinance keeps its timezone and
    cookie caches under ``settings.yfinance_cache_dir``; failures raise instead of being
    logged and turned into an empty frame. ``session`` is a curl_cffi or requests Session
    (default: yfinance's own curl_cffi session)."""

    def __init__(
        self, settings: Settings, session: Any = None, timeout_s: float = REQUEST_TIMEOUT_S
    ) -> None:
        cache_dir = settings.yfinance_cache_dir / "yfinance"
        cache_dir.mkdir(parents=True, exist_ok=True)
        yf.set_tz_cache_location(str(cache_dir))
        yf.config.debug.hide_exceptions = False
        self._session = session
        self._timeout_s = timeout_s

    def fetch_history(
        self, symbol: str, interval: str, start: datetime, end: datetime
    ) -> pd.DataFrame:
        ticker = yf.Ticker(symbol, session=self._session)
        try:
            return ticker.history(start=start, end=end, interval=interval, timeout=self._timeout_s)
        except YFPricesMissingError:
            return pd.DataFrame()  # no rows in the window (a holiday, before the first bar)


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


class FetchStopped(Exception):
    """The feed was asked to stop while waiting for a token or a retry."""


class GuardedFetcher:
    """Wraps a fetcher: every attempt takes a rate-limit token; failures (HTTP 429 and any
    other error) retry with exponential backoff and jitter, up to
    ``settings.yfinance_max_retries`` attempts; each outcome is recorded in ``status``.

    ``wait(seconds) -> stop requested`` does all waiting, so tests inject a fake clock.
    """

    def __init__(
        self,
        inner: HistoryFetcher,
        settings: Settings,
        status: FeedStatus,
        *,
        clock: Callable[[], float],
        wait: Callable[[float], bool],
    ) -> None:
        self.inner = inner
        self.status = status
        self._clock = clock
        self._wait = wait
        self._bucket = TokenBucket(settings.yfinance_min_interval_s, clock=clock, wait=wait)
        self._max_attempts = max(1, settings.yfinance_max_retries)

    def _sleep(self, seconds: float) -> None:
        if self._wait(seconds):
            raise FetchStopped()

    def _attempt(self, symbol: str, interval: str, start: datetime, end: datetime) -> pd.DataFrame:
        if not self._bucket.acquire():
            raise FetchStopped()
        self.status.update(last_attempt_at=self._clock())
        return self.inner.fetch_history(symbol, interval, start, end)

    def _failed(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if exc is None:
            return
        failures = self.status.consecutive_failures + 1
        rate_limited = isinstance(exc, YFRateLimitError)
        self.status.update(
            state="retrying",
            consecutive_failures=failures,
            last_error=_describe(exc),
            rate_limited=rate_limited,
        )
        log.warning(
            "yfinance_fetch_failed",
            symbol=state.args[0],
            interval=state.args[1],
            attempt=state.attempt_number,
            rate_limited=rate_limited,
            error=_describe(exc),
            retry_in_s=round(state.upcoming_sleep, 3),
            consecutive_failures=failures,
        )

    def fetch_history(
        self, symbol: str, interval: str, start: datetime, end: datetime
    ) -> pd.DataFrame:
        """The frame, or raises the last error once every attempt failed."""
        retrying = Retrying(
            stop=stop_after_attempt(self._max_attempts),
            wait=wait_exponential_jitter(
                multiplier=BACKOFF_INITIAL_S, max=BACKOFF_MAX_S, jitter=BACKOFF_JITTER_S
            ),
            retry=retry_if_not_exception_type(FetchStopped),
            before_sleep=self._failed,
            sleep=self._sleep,
            reraise=True,
        )
        try:
            frame = retrying(self._attempt, symbol, interval, start, end)
        except FetchStopped:
            raise
        except Exception as exc:
            failures = self.status.consecutive_failures + 1
            self.status.update(
                state="failing",
                consecutive_failures=failures,
                last_error=_describe(exc),
                rate_limited=isinstance(exc, YFRateLimitError),
            )
            log.error(
                "yfinance_feed_down",
                symbol=symbol,
                interval=interval,
                attempts=self._max_attempts,
                consecutive_failures=failures,
                rate_limited=isinstance(exc, YFRateLimitError),
                error=_describe(exc),
            )
            raise
        self.status.update(
            state="ok",
            last_success_at=self._clock(),
            consecutive_failures=0,
            rate_limited=False,
        )
        return frame
