"""A live option-chain source: polls a ``ChainFeed`` while NSE is open.

The feed interface is all a new provider implements (NSE's website today; a broker API such
as Kite Connect, Upstox or Dhan, with credentials from AEGIS_* settings, would be another):

    class ChainFeed(Protocol):
        name: str
        def expiries(self) -> list[date]: ...           # listed NIFTY expiries
        def chain(self, expiry: date) -> OptionChain: ...  # one expiry, OI in units

Both raise ``ChainFeedError`` (``retryable`` for 401/403/429/5xx, timeouts, malformed JSON).
``ChainPollSource`` does the rest, the same for every feed: the nearest weekly expiries plus
the monthly, a token bucket between requests, exponential backoff with jitter on failures, a
``FeedStatus`` the ingest service reports in /health (so a failing feed, or one whose
exchange timestamp is over 15 minutes old during a session, is degraded, never silently
stale), and nothing at all outside market hours.
"""

from __future__ import annotations

import functools
import random
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import Protocol, TypeVar

from services.ingest.sources.base import RejectedInput
from services.ingest.sources.feed_status import FeedStatus
from services.ingest.sources.rate_limit import TokenBucket
from services.ingest.sources.yfinance_source import next_session_open
from shared.config import Settings
from shared.contract.schemas import OptionChain
from shared.logs import get_logger
from shared.market.calendar import IST, is_market_open

T = TypeVar("T")
BACKOFF_INITIAL_S = 2.0
BACKOFF_MAX_S = 120.0
BACKOFF_JITTER_S = 1.0
STALE_AFTER_S = 900  # during a session, a chain whose exchange timestamp is older is stale

log = get_logger("ingest.chain_feed")


class ChainFeedError(Exception):
    """A failed request; ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = True):
        super().__init__(message)
        self.status = status
        self.retryable = retryable


class ChainFeed(Protocol):
    name: str

    def expiries(self) -> list[date]: ...

    def chain(self, expiry: date) -> OptionChain: ...


def select_expiries(listed: list[date], today: date, weeklies: int) -> list[date]:
    """The nearest ``weeklies`` unexpired expiries plus the monthly: the last expiry of the
    nearest expiry's month, or of the next month when that one is already chosen."""
    ahead = sorted(e for e in set(listed) if e >= today)
    chosen = ahead[:weeklies]
    if not ahead:
        return []
    month = (ahead[0].year, ahead[0].month)
    for _ in range(2):
        last = max((e for e in ahead if (e.year, e.month) == month), default=None)
        if last is not None and last not in chosen:
            return [*chosen, last]
        month = (month[0] + month[1] // 12, month[1] % 12 + 1)
    return chosen


class ChainPollSource:
    """Yields ``OptionChain``s from ``feed`` every ``settings.chain_poll_s`` while NSE is
    open; ``close()`` interrupts any wait. ``clock`` and ``rng`` are injectable for tests."""

    def __init__(
        self,
        feed: ChainFeed,
        settings: Settings,
        *,
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.time,
        wait: Callable[[float], bool] | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.feed = feed
        self.name = f"chain:{feed.name}"
        self.settings = settings
        self._stop = stop or threading.Event()
        self._clock = clock
        self._wait = wait or self._stop.wait
        self._rng = rng
        self._bucket = TokenBucket(
            settings.chain_min_interval_s,
            clock=time.monotonic if wait is None else clock,
            wait=self._wait,
        )
        self._status = FeedStatus()
        self._last: dict[str, int] = {}  # expiry -> snapshot_time last yielded

    @property
    def status(self) -> dict[str, object]:
        return self._status.snapshot()

    def close(self) -> None:
        self._stop.set()

    def events(self) -> Iterator[OptionChain | RejectedInput]:
        while not self._stop.is_set():
            now = self._clock()
            if not is_market_open(datetime.fromtimestamp(now, IST)):
                opens = next_session_open(now)
                self._status.update(state="closed", next_poll_at=opens)
                if self._wait(max(1.0, min(opens - now, self.settings.chain_poll_s))):
                    return
                continue
            yield from self._poll(now)
            self._status.update(next_poll_at=self._clock() + self.settings.chain_poll_s)
            if self._wait(self.settings.chain_poll_s):
                return

    def _poll(self, now: float) -> Iterator[OptionChain]:
        self._status.update(last_attempt_at=now)
        listed = self._attempt("expiry list", self.feed.expiries)
        if listed is None:
            return
        today = datetime.fromtimestamp(now, IST).date()
        failed, stale = [], []
        for expiry in select_expiries(listed, today, self.settings.chain_weekly_expiries):
            chain = self._attempt(f"chain {expiry}", functools.partial(self.feed.chain, expiry))
            if chain is None:
                failed.append(expiry.isoformat())
                continue
            if now - chain.snapshot_time > STALE_AFTER_S:
                stale.append(chain.expiry)  # a frozen page is not passed off as live
            if self._last.get(chain.expiry) == chain.snapshot_time:
                continue  # NSE has not refreshed this expiry since the last poll
            self._last[chain.expiry] = chain.snapshot_time
            yield chain
        self._status.update(failed_series=failed, stale_series=stale)
        if not failed:
            self._status.update(
                state="stale" if stale else "ok",
                last_success_at=self._clock(),
                consecutive_failures=0,
                rate_limited=False,
            )

    def _attempt(self, what: str, call: Callable[[], T]) -> T | None:
        """``call()`` with retries; None once it failed ``chain_max_retries`` times (or a
        non-retryable error, or a stop)."""
        for attempt in range(max(1, self.settings.chain_max_retries)):
            if not self._bucket.acquire():
                return None
            try:
                return call()
            except ChainFeedError as exc:
                failures = int(self._status.snapshot()["consecutive_failures"]) + 1
                self._status.update(
                    state="retrying",
                    consecutive_failures=failures,
                    last_error=f"{what}: {exc}",
                    rate_limited=exc.status == 429,
                )
                log.warning("chain_feed_error", feed=self.feed.name, what=what, error=str(exc))
                if not exc.retryable:
                    break
                delay = min(BACKOFF_MAX_S, BACKOFF_INITIAL_S * 2**attempt)
                if self._wait(delay + BACKOFF_JITTER_S * self._rng()):
                    return None
        self._status.update(state="failing")
        return None
