"""How every service lives: start, health heartbeat, reconnect, graceful stop.

- ``prepare`` / ``serve``: a service process loads its settings, configures logging, turns
  SIGTERM (docker stop, the stack) and SIGINT (Ctrl-C) into its ``stop()`` and runs; ``run``
  returns once the service has finished what it holds.
- ``Reconnect``: a Redis step retried while Redis is unavailable (connection refused or
  reset, timeout, loading its data), with exponential backoff and full jitter (tenacity's
  ``wait_random_exponential``: each wait is uniform in [0, min(cap, initial x 2^(n-1))]), so
  replicas that lost Redis together do not come back in step. Each retry is a structured
  ``redis_unavailable`` warning with its wait, and calls the service's reset hook (count the
  reconnect, drop state not committed to Redis). A stop ends a wait at once: ``Stopped``.
- ``HealthReporter``: the one writer of a process's health report (``aegis:health:<service>:
  <consumer>``, JSON, expiring after ``health_ttl_s``), at most once a second unless forced.
  ``RejectWindow`` is the recent share of rejected inputs that makes a report degraded.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import orjson
import redis
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    retry_if_not_exception_type,
    stop_never,
    wait_random_exponential,
)

from shared.bus import streams
from shared.bus.publish import connect
from shared.config import Settings, get_settings
from shared.logs import configure_logging, get_logger
from shared.redis_ops.acl import local_credentials

T = TypeVar("T")
# Redis is away, not ready (BusyLoadingError, a ConnectionError, is named for the reader), or
# full: at maxmemory with noeviction a write is refused (OOM); writers wait with backoff as
# for an outage (a refused MULTI/EXEC wrote nothing) and resume once memory frees.
REDIS_UNAVAILABLE: tuple[type[Exception], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.BusyLoadingError,
    redis.exceptions.OutOfMemoryError,
)


# Refused credentials: a configuration error, not an outage -------------------------------------
EXIT_CREDENTIALS = 78  # EX_CONFIG (sysexits.h): restarting will not help until it is fixed


def credentials_refused(settings: Settings, exc: BaseException) -> SystemExit:
    """One line saying whose credentials Redis refused and where to fix them (logged and on
    stderr), and the exit that ends the process with ``EXIT_CREDENTIALS``."""
    user = settings.redis_user or "default"
    text = (
        f"Redis at {settings.redis_address} refused user {user!r}: {exc}. Set "
        "AEGIS_REDIS_USER and AEGIS_REDIS_PASSWORD (under make run they are in "
        "var/redis/credentials.json)"
    )
    get_logger("lifecycle").error("redis_credentials_refused", user=user, reason=text)
    print(text, file=sys.stderr)
    return SystemExit(EXIT_CREDENTIALS)


def check_credentials(settings: Settings) -> None:
    """Fail fast on a wrong user or password (one PING); Redis merely unreachable is left to
    the service's own retrying."""
    client = connect(settings)
    try:
        client.ping()
    except redis.AuthenticationError as exc:
        raise credentials_refused(settings, exc) from None
    except REDIS_UNAVAILABLE:
        pass
    finally:
        client.close()


def command_settings(user: str) -> Settings:
    """An operator command's settings: the environment's; beside ``make run``, as ``user``
    with the generated password; credentials Redis refuses said in one line (exit 78)."""
    settings = local_credentials(prepare(), user)
    check_credentials(settings)
    return settings


# Start and stop -----------------------------------------------------------------------------
class Service(Protocol):
    def run(self) -> object: ...

    def stop(self) -> None: ...


def prepare(settings: Settings | None = None) -> Settings:
    """A service process's settings (the environment's unless given), logging configured."""
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_json)
    return settings


def stop_on_signals(stop: Callable[[], None]) -> None:
    """SIGTERM and SIGINT call ``stop`` (which must only set events: it runs between the
    main thread's bytecodes, so no locks and no logging)."""

    def handler(signum: int, frame: object) -> None:
        stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)


def idle_cpu() -> bool:
    """Linux SCHED_IDLE for this process: scheduled only when no other task wants the CPU
    (below any niceness). For work off the document's path during a replay (alerts,
    history), which catches up after the flood; not live, where a long training run could
    hold it back."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        return False
    return True


def leave_idle_cpu() -> bool:
    """The calling thread back from idle CPU only to normal scheduling (its niceness kept);
    True when it was on idle CPU and now is not."""
    try:
        if os.sched_getscheduler(0) != os.SCHED_IDLE:
            return False
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    except (AttributeError, OSError):
        return False
    return True


def serve(factory: Callable[..., Service], settings: Settings | None = None, **kwargs: Any) -> None:
    """Run a service process: ``factory(settings, **kwargs)`` builds it, a signal stops it.
    Started by hand beside ``make run``, it connects as its own Redis user (``service``)."""
    settings = prepare(settings)
    if isinstance(service_name := getattr(factory, "service", None), str):
        settings = local_credentials(settings, service_name)
    check_credentials(settings)
    try:
        service = factory(settings, **kwargs)
        stop_on_signals(service.stop)
        service.run()
    except redis.AuthenticationError as exc:  # e.g. the password changed while running
        raise credentials_refused(settings, exc) from None


# Reconnect ----------------------------------------------------------------------------------
class Stopped(Exception):
    """The stop event ended the retrying; ``error`` is the last Redis error."""

    def __init__(self, what: str, error: BaseException | None) -> None:
        super().__init__(f"stopped while retrying {what}: {error}")
        self.what = what
        self.error = error


@dataclass(frozen=True)
class Backoff:
    """The first wait's ceiling and the cap of every wait, in seconds."""

    initial_s: float = 0.2
    max_s: float = 5.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Backoff:
        return cls(settings.reconnect_initial_s, settings.reconnect_max_s)


class Reconnect:
    """Calls a Redis step, retrying it while Redis is unavailable.

    ``on_retry(exc)`` runs after each failed attempt (also the one a stop ends): the
    service counts the reconnect and resets what it held. The attempt counter, hence the
    backoff, starts again with each ``call``: a service calls it once per loop step."""

    def __init__(
        self,
        log: Any,
        backoff: Backoff,
        *,
        stop: threading.Event | None = None,
        on_retry: Callable[[BaseException], None] | None = None,
        retry_on: tuple[type[BaseException], ...] = REDIS_UNAVAILABLE,
    ) -> None:
        self.log = log
        self.stop = stop or threading.Event()
        self.on_retry = on_retry
        self.retry_on = retry_on
        self.wait = wait_random_exponential(multiplier=backoff.initial_s, max=backoff.max_s)

    def call(self, fn: Callable[[], T], what: str = "redis call") -> T:
        """``fn()``, tried at least once even when stopped already (a final flush); raises
        ``Stopped`` when a stop ends the retrying."""
        try:  # a healthy step costs one try; tenacity only after a failure (BENCHMARKS.md)
            return fn()
        except redis.AuthenticationError:
            raise  # wrong credentials: retrying cannot fix them (credentials_refused)
        except self.retry_on as exc:
            first = exc
        lost: list[BaseException] = []  # the last error of this call

        def sleep(seconds: float) -> None:
            if self.stop.wait(seconds):
                raise Stopped(what, lost[-1] if lost else None)

        retrying = Retrying(
            sleep=sleep, stop=lambda _: self.stop.is_set(), **self._policy(what, lost)
        )
        return retrying(_failed_once(first, fn))

    async def call_async(self, fn: Callable[[], Awaitable[T]], what: str = "redis call") -> T:
        """The asyncio twin of ``call``: retries until Redis answers; cancelling the task is
        the stop (it ends a wait at once)."""
        try:
            return await fn()
        except redis.AuthenticationError:
            raise
        except self.retry_on as exc:
            first = exc
        pending = [first]

        async def attempt() -> T:  # tenacity awaits only a coroutine function
            if pending:
                raise pending.pop()
            return await fn()

        retrying = AsyncRetrying(stop=stop_never, **self._policy(what, []))
        return await retrying(attempt)

    def _policy(self, what: str, lost: list[BaseException]) -> dict[str, Any]:
        def failed(state: RetryCallState) -> BaseException | None:
            exc = state.outcome.exception() if state.outcome else None
            if exc is not None:
                lost[:] = [exc]
                if self.on_retry is not None:
                    self.on_retry(exc)
            return exc

        def before_sleep(state: RetryCallState) -> None:
            exc = failed(state)
            self.log.warning(
                "redis_unavailable",
                what=what,
                error=str(exc),
                attempt=state.attempt_number,
                retry_in_s=round(state.upcoming_sleep, 3),
            )

        def gave_up(state: RetryCallState) -> Any:
            raise Stopped(what, failed(state))

        return {
            "retry": retry_if_exception_type(self.retry_on)
            & retry_if_not_exception_type(redis.AuthenticationError),
            "wait": self.wait,
            "before_sleep": before_sleep,
            "retry_error_callback": gave_up,
            "reraise": True,
        }


def _failed_once(error: BaseException, fn: Callable[[], T]) -> Callable[[], T]:
    """``fn`` whose first attempt (made already, outside tenacity) raised ``error``: tenacity
    counts it as attempt 1 and backs off before calling ``fn`` again."""
    pending = [error]

    def attempt() -> T:
        if pending:
            raise pending.pop()
        return fn()

    return attempt


def call_with_reconnect(
    fn: Callable[[], T],
    stop: threading.Event,
    log: Any,
    what: str = "redis call",
    backoff: Backoff = Backoff(),
) -> T | None:
    """``fn()`` retried while Redis is unavailable; None (logged as ``redis_write_abandoned``
    with ``what``) when a stop ends the retrying. Only for idempotent calls (bar publishing
    is: a retried duplicate is recognised)."""
    try:
        return Reconnect(log, backoff, stop=stop).call(fn, what)
    except Stopped as exc:
        log.error(
            "redis_write_abandoned",
            what=what,
            error=str(exc.error),
            reason="stopping while Redis is unavailable",
        )
        return None


# Health -------------------------------------------------------------------------------------
class HealthReporter:
    """Writes one process's health report: service, consumer, status (``degraded`` when
    there is a reason), the reasons, when, and the service's own fields."""

    def __init__(
        self,
        client: redis.Redis,
        settings: Settings,
        service: str,
        consumer: str,
        interval_s: float = 1.0,
    ) -> None:
        self.client = client
        self.ttl_s = settings.health_ttl_s
        self.service = service
        self.consumer = consumer
        self.key = streams.health(service, consumer)
        self.interval_s = interval_s
        self._last = 0.0

    def due(self, force: bool = False) -> bool:
        """Whether a report is to be written now (and if so, counts it as written)."""
        now = time.monotonic()
        if not force and now - self._last < self.interval_s:
            return False
        self._last = now
        return True

    def write(self, reasons: list[str], fields: dict[str, Any]) -> dict[str, Any]:
        """Store the report (and return it)."""
        report = {
            "service": self.service,
            "consumer": self.consumer,
            "status": "degraded" if reasons else "ok",
            "degraded_reasons": reasons,
            "reported_at": int(time.time() * 1000),
            **fields,
        }
        self.client.set(self.key, orjson.dumps(report, default=str), ex=self.ttl_s)
        return report

    def refresh(self) -> None:
        """Keep the last report alive (a long batch in hand)."""
        self.client.expire(self.key, self.ttl_s)


# Below this many recent inputs, the reject ratio counts against this many (a handful of
# rejections at start-up is no reason to report degraded).
MIN_HEALTH_SAMPLE = 100


class RejectWindow:
    """Inputs and rejections over the last ``health_reject_window_s`` reports."""

    def __init__(self, settings: Settings) -> None:
        self.ratio = settings.health_reject_ratio
        self._samples: deque[tuple[int, int]] = deque(
            [(0, 0)], maxlen=max(2, settings.health_reject_window_s)
        )

    def add(self, good_total: int, bad_total: int) -> tuple[int, int] | None:
        """Record the running totals; (good, bad) over the window when the bad exceed the
        ratio, else None."""
        self._samples.append((good_total, bad_total))
        good = good_total - self._samples[0][0]
        bad = bad_total - self._samples[0][1]
        return (good, bad) if bad > self.ratio * max(good + bad, MIN_HEALTH_SAMPLE) else None

    def __len__(self) -> int:
        return len(self._samples)
