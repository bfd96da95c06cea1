"""The service lifecycle (shared.bus.lifecycle): backoff with full jitter, a stop that ends a
wait, the health report, start-up and signals."""

from __future__ import annotations

import asyncio
import itertools
import signal
import statistics
import threading
import time
from collections.abc import Iterable
from typing import Any

import orjson
import pytest
import redis
from structlog.testing import capture_logs

from shared.bus import lifecycle, streams
from shared.bus.lifecycle import Backoff, HealthReporter, Reconnect, RejectWindow, Stopped, serve
from shared.bus.worker import StreamWorker
from shared.config import Settings
from shared.contract.schemas import Message
from shared.logs import get_logger
from tests.waiting import RecordingStop, wait_for

BACKOFF = Backoff(initial_s=0.2, max_s=5.0)


def failing(times: int, error: Exception | None = None) -> Any:
    """A call that raises a Redis connection error ``times`` times, then answers."""
    left = [times]

    def call() -> str:
        if left[0] > 0:
            left[0] -= 1
            raise error or redis.ConnectionError("Connection refused")
        return "ok"

    return call


def test_waits_are_jittered_and_grow_up_to_the_cap() -> None:
    failures = 8
    by_attempt: list[list[float]] = [[] for _ in range(failures)]
    retried: list[BaseException] = []
    for _ in range(300):
        stop = RecordingStop()
        reconnect = Reconnect(get_logger("t"), BACKOFF, stop=stop, on_retry=retried.append)
        assert reconnect.call(failing(failures)) == "ok"
        assert len(stop.waits) == failures
        for attempt, wait in enumerate(stop.waits):
            by_attempt[attempt].append(wait)
    assert len(retried) == 300 * failures  # the reset hook ran after every failure
    ceilings = [min(BACKOFF.max_s, BACKOFF.initial_s * 2**n) for n in range(failures)]
    for waits, ceiling in zip(by_attempt, ceilings, strict=True):
        assert 0 <= min(waits) and max(waits) <= ceiling  # full jitter, bounded by the cap
        assert len(set(waits)) > 250  # jittered: replicas do not retry in step
        assert max(waits) > 0.9 * ceiling  # and the window really reaches the ceiling
    means = [statistics.fmean(w) for w in by_attempt]
    assert all(later > 1.3 * earlier for earlier, later in itertools.pairwise(means[:6]))  # grow
    assert max(means[6:]) < 0.6 * BACKOFF.max_s  # capped: uniform in [0, 5 s], mean 2.5 s


def test_each_retry_is_a_structured_warning_with_its_wait() -> None:
    stop = RecordingStop()
    with capture_logs() as logs:
        assert Reconnect(get_logger("t"), BACKOFF, stop=stop).call(failing(2), "5 bars") == "ok"
    warnings = [x for x in logs if x["event"] == "redis_unavailable"]
    assert [w["attempt"] for w in warnings] == [1, 2]
    assert all(w["log_level"] == "warning" and w["what"] == "5 bars" for w in warnings)
    assert [w["retry_in_s"] for w in warnings] == [round(s, 3) for s in stop.waits]


def test_other_errors_are_not_retried() -> None:
    stop = RecordingStop()
    with pytest.raises(redis.ResponseError, match="NOGROUP"):
        Reconnect(get_logger("t"), BACKOFF, stop=stop).call(
            failing(1, redis.ResponseError("NOGROUP no such group"))
        )
    assert stop.waits == []


def test_a_stop_during_a_wait_ends_it_at_once() -> None:
    stop = threading.Event()
    attempts: list[float] = []
    waiting = threading.Event()

    def down() -> None:
        attempts.append(time.monotonic())
        raise redis.ConnectionError("Connection refused")

    reconnect = Reconnect(
        get_logger("t"), Backoff(60.0, 60.0), stop=stop, on_retry=lambda exc: waiting.set()
    )
    reconnect.wait = lambda state: 60.0  # type: ignore[assignment]  # a long wait, surely
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            reconnect.call(down, "the group")
        except Stopped as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    assert waiting.wait(10), "the first attempt did not fail"
    stopped_at = time.monotonic()
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    assert time.monotonic() - stopped_at < 2.0  # not the 60 s wait
    [stopped] = outcome
    assert isinstance(stopped, Stopped) and isinstance(stopped.error, redis.ConnectionError)
    assert len(attempts) == 1  # no attempt after the stop


def test_already_stopped_tries_once_and_gives_up() -> None:
    stop = RecordingStop()
    stop.set()
    retried: list[BaseException] = []
    reconnect = Reconnect(get_logger("t"), BACKOFF, stop=stop, on_retry=retried.append)
    assert reconnect.call(failing(0)) == "ok"  # a final flush still happens
    with pytest.raises(Stopped):
        reconnect.call(failing(1))
    assert stop.waits == [] and len(retried) == 1  # the reset hook ran for the lost call


def test_async_retries_until_redis_answers_and_a_cancel_ends_a_wait() -> None:
    async def scenario() -> None:
        retried: list[BaseException] = []
        reconnect = Reconnect(
            get_logger("t"), Backoff(0.001, 0.002), on_retry=retried.append, retry_on=(OSError,)
        )
        left = [3]

        async def flaky() -> str:
            if left[0]:
                left[0] -= 1
                raise ConnectionResetError("reset by peer")
            return "ok"

        assert await reconnect.call_async(flaky) == "ok"
        assert len(retried) == 3

        slow = Reconnect(get_logger("t"), Backoff(60.0, 60.0), on_retry=retried.append)
        slow.wait = lambda state: 60.0  # type: ignore[assignment]

        async def down() -> None:
            raise redis.ConnectionError("Connection refused")

        task = asyncio.create_task(slow.call_async(down))
        while len(retried) < 4:  # the first attempt failed: the task waits 60 s now
            await asyncio.sleep(0)
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - started < 1.0

    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_health_report_format_throttle_and_ttl(
    settings: Settings, redis_client: redis.Redis
) -> None:
    health = HealthReporter(redis_client, settings, "features", "host-1")
    assert health.due() and not health.due() and health.due(force=True)
    health.write(["model x unavailable"], {"processed": 3})
    key = streams.health("features", "host-1")
    report = orjson.loads(redis_client.get(key) or b"")
    assert report["service"] == "features" and report["consumer"] == "host-1"
    assert report["status"] == "degraded" and report["degraded_reasons"] == ["model x unavailable"]
    assert report["processed"] == 3 and abs(report["reported_at"] / 1000 - time.time()) < 60
    assert 0 < redis_client.ttl(key) <= settings.health_ttl_s
    health.write([], {})
    assert orjson.loads(redis_client.get(key) or b"")["status"] == "ok"


def test_reject_window_counts_recent_inputs_only(settings: Settings) -> None:
    window = RejectWindow(settings.model_copy(update={"health_reject_window_s": 3}))
    assert window.add(100, 4) is None  # 4 % of 104
    assert window.add(200, 30) == (200, 30)  # 30 of 230 since the window's start
    for good in (300, 400, 500):
        window.add(good, 30)  # no new rejections: the old ones leave the window
    assert window.add(600, 30) is None
    start = RejectWindow(settings)  # few inputs: the ratio counts against at least 100
    assert start.add(10, 4) is None  # 4 of 14, but below 5 % of 100
    assert start.add(20, 8) == (20, 8)


def test_serve_builds_runs_and_stops_on_sigterm(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    configured: list[tuple[str, bool | None]] = []
    monkeypatch.setattr(lifecycle, "configure_logging", lambda *a: configured.append(a))

    class Waits:
        def __init__(self, settings: Settings, name: str) -> None:
            self.name = name
            self.stopped = threading.Event()

        def run(self) -> None:
            signal.raise_signal(signal.SIGTERM)
            assert self.stopped.wait(10), "SIGTERM did not reach stop()"
            built.append(self)

        def stop(self) -> None:
            self.stopped.set()

    built: list[Waits] = []
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        serve(Waits, settings, name="features-a")
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    [service] = built
    assert service.name == "features-a" and service.stopped.is_set()
    assert configured == [(settings.log_level, settings.log_json)]


class Echo(StreamWorker):
    service = "echo"
    input_stream = "aegis:test:echo"

    def handle(self, message: Message, entry_id: str) -> Iterable[Message]:
        return [message]


def test_worker_without_redis_backs_off_resets_and_stops_promptly(settings: Settings) -> None:
    gone = settings.model_copy(
        update={
            "redis_url": "redis://127.0.0.1:1/0",  # nothing listens: refused at once
            "reconnect_initial_s": 0.01,
            "reconnect_max_s": 0.05,
        }
    )
    with capture_logs() as logs:
        worker = Echo(gone, consumer="c1")
        resets: list[int] = []
        worker.on_reset = lambda: resets.append(1)  # type: ignore[method-assign]
        thread = threading.Thread(target=worker.run)
        thread.start()
        wait_for(lambda: worker.stats["reconnects"] >= 3, message="three reconnect attempts")
        worker.stop()
        thread.join(10)
    assert not thread.is_alive()
    assert len(resets) == worker.stats["reconnects"]  # the reset hook ran for every loss
    retries = [x for x in logs if x["event"] == "redis_unavailable"]
    assert retries and all(0 <= r["retry_in_s"] <= 0.05 for r in retries)
    assert retries[0]["what"] == "aegis:test:echo" and retries[0]["attempt"] == 1
    assert any(x["event"] == "final_health_not_written" for x in logs)
