"""IngestService on a real Redis: health from the feed status, writes after a stop, and the
entry point's signal handling."""

from __future__ import annotations

import gzip
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from structlog.testing import capture_logs

import services.ingest.__main__ as entry
from services.ingest.main import IngestService
from services.ingest.sources.base import RejectedInput, SourceEvent
from services.ingest.sources.chain_file import ChainFileSource
from services.ingest.sources.feed_status import FeedStatus
from services.ingest.sources.file_replay import FileReplaySource
from services.ingest.sources.yfinance_source import Series, YFinanceSource
from shared.bus import lifecycle, replies, streams
from shared.bus.lifecycle import call_with_reconnect
from shared.bus.worker import read_health
from shared.config import Settings
from shared.contract.schemas import Bar
from shared.logs import get_logger
from tests.pipeline import DATA_DIR, SHORT_WINDOW
from tests.test_chain_file import HEADER
from tests.test_ingest_yfinance import FakeClock, RecordedFrames, ist
from tests.waiting import RecordingStop, wait_for


class StubSource:
    """A source yielding fixed events, with a fixed status."""

    name = "stub"

    def __init__(
        self,
        events: list[SourceEvent | RejectedInput] | None = None,
        status: dict[str, Any] | None = None,
    ) -> None:
        self._events = events or []
        self._status = status or {}

    def events(self) -> Iterator[SourceEvent | RejectedInput]:
        yield from self._events

    def close(self) -> None:
        pass

    @property
    def status(self) -> dict[str, Any]:
        return self._status


def bar(minute: int) -> Bar:
    return Bar(
        symbol="NIFTY",
        interval="1m",
        open_time=1_700_000_000 + 60 * minute,
        open=100.0,
        high=101.0,
        low=99.0,
        close=100.5,
        source="test",
    )


def ingest_report(client: redis.Redis) -> dict[str, Any]:
    reports = [r for r in read_health(client) if r["service"] == "ingest"]
    assert len(reports) == 1
    return reports[0]


# -- health ------------------------------------------------------------------------------
def feed(**changes: Any) -> dict[str, Any]:
    status = FeedStatus()
    status.update(**changes)
    return status.snapshot()


@pytest.mark.parametrize(
    ("status", "says"),
    [
        (
            feed(state="failing", consecutive_failures=5, last_error="ConnectionError: reset"),
            ["feed failing", "5 consecutive failures", "ConnectionError: reset"],
        ),
        (
            feed(
                state="failing",
                rate_limited=True,
                consecutive_failures=5,
                last_error="YFRateLimitError: Too Many Requests",
            ),
            ["feed failing", "rate limited", "YFRateLimitError"],
        ),
        (
            feed(state="retrying", consecutive_failures=1, last_error="TimeoutError: read"),
            ["feed retrying", "TimeoutError"],
        ),
        (feed(state="stale", stale_series=["NIFTY:1m"]), ["feed stale", "stale NIFTY:1m"]),
        (
            feed(state="closed", consecutive_failures=2, last_error="HTTPError: 502"),
            ["feed closed", "HTTPError: 502"],
        ),
    ],
)
def test_unhealthy_feed_makes_ingest_health_degraded(
    settings: Settings, redis_client: redis.Redis, status: dict[str, Any], says: list[str]
) -> None:
    IngestService(settings, StubSource(status=status), redis_client).run()
    report = ingest_report(redis_client)
    assert report["status"] == "degraded"
    [reason] = report["degraded_reasons"]
    assert reason.startswith("source stub: ")
    assert all(text in reason for text in says), reason
    assert report["source"]["state"] == status["state"]


@pytest.mark.parametrize(
    "status",
    [
        {},
        {"source": "file", "data_dir": "/data"},
        feed(),
        feed(state="ok"),
        feed(state="closed", last_error="ConnectionError: old, recovered since"),
    ],
)
def test_healthy_feed_keeps_ingest_health_ok(
    settings: Settings, redis_client: redis.Redis, status: dict[str, Any]
) -> None:
    IngestService(settings, StubSource(status=status), redis_client).run()
    report = ingest_report(redis_client)
    assert report["status"] == "ok" and report["degraded_reasons"] == []


def test_failing_yahoo_feed_reports_degraded_ingest(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    clock = FakeClock(ist("2025-06-30T10:00:00"), stop_at=ist("2025-06-30T10:00:30"))
    live = settings.model_copy(
        update={
            "yfinance_cache_dir": tmp_path / "yf",
            "yfinance_min_interval_s": 2.0,
            "yfinance_max_retries": 2,
        }
    )
    fetcher = RecordedFrames(clock, fail=ConnectionError("connection reset by peer"))
    source = YFinanceSource(
        live, fetcher, series=(Series("^NSEI", "1d"),), clock=clock, wait=clock.wait
    )
    counts = IngestService(live, source, redis_client).run()
    assert counts["published"] == 0
    report = ingest_report(redis_client)
    assert report["consumer"] == "yfinance" and report["status"] == "degraded"
    [reason] = report["degraded_reasons"]
    assert "feed failing" in reason and "connection reset by peer" in reason
    assert "failed NIFTY:1d" in reason


# -- writes once stopped ---------------------------------------------------------------------
def test_call_happens_once_even_when_already_stopped() -> None:
    stop = RecordingStop()
    stop.set()
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        return "done"

    assert call_with_reconnect(call, stop, get_logger("t")) == "done"
    assert calls == [1]


def test_stopped_call_is_not_retried_and_says_what_was_lost() -> None:
    stop = RecordingStop()
    stop.set()
    calls: list[int] = []

    def down() -> None:
        calls.append(1)
        raise redis.ConnectionError("Connection refused")

    with capture_logs() as logs:
        assert call_with_reconnect(down, stop, get_logger("t"), what="3 bars") is None
    assert calls == [1] and stop.waits == []
    [abandoned] = [x for x in logs if x["event"] == "redis_write_abandoned"]
    assert abandoned["what"] == "3 bars" and abandoned["log_level"] == "error"


def test_unstopped_call_retries_until_redis_answers() -> None:
    stop = RecordingStop()
    outcomes: list[Exception | str] = [
        redis.ConnectionError("down"),
        redis.TimeoutError("slow"),
        "ok",
    ]

    def flaky() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert call_with_reconnect(flaky, stop, get_logger("t")) == "ok"
    assert outcomes == [] and len(stop.waits) == 2


def test_final_flush_after_stop_still_publishes(
    settings: Settings, redis_client: redis.Redis
) -> None:
    service = IngestService(settings, StubSource(), redis_client)
    service.stop()  # SIGTERM arrived; run() now flushes the batch in hand
    batch = [bar(i) for i in range(3)]
    service._flush(batch)
    assert redis_client.xlen(streams.BARS) == 3
    assert service.counts["published"] == 3 and batch == []


def test_dead_letter_after_stop_is_written_and_counted(
    settings: Settings, redis_client: redis.Redis
) -> None:
    service = IngestService(settings, StubSource(), redis_client)
    service.stop()
    service._dead_letter("NIFTY 1m bar: high below low", b"raw")
    assert redis_client.xlen(streams.DEAD_LETTER) == 1
    assert service.counts["dead_lettered"] == 1


@pytest.mark.slow
def test_dead_letter_lost_at_shutdown_is_not_counted(settings: Settings) -> None:
    gone = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1)
    service = IngestService(settings, StubSource(), gone)
    service.stop()
    with capture_logs() as logs:
        service._dead_letter("NIFTY 1m bar: high below low", b"raw")
    assert service.counts["dead_lettered"] == 0
    [abandoned] = [x for x in logs if x["event"] == "redis_write_abandoned"]
    assert abandoned["what"] == "dead letter: NIFTY 1m bar: high below low"


# -- the entry point -------------------------------------------------------------------------
def test_sigterm_during_chain_ingest_stops_it_and_skips_the_main_source(
    settings: Settings,
    redis_client: redis.Redis,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "chain.csv.gz"
    with gzip.open(path, "wt") as out:
        out.write(
            HEADER
            + "".join(
                f"2026-01-22T09:{m}:45+05:30,2026-01-27,25400,120.5,650,0,98.0,1300,0,25403.6\n"
                for m in (39, 40, 41)
            )
        )
    monkeypatch.setattr(
        entry, "get_settings", lambda: settings.model_copy(update={"chain_file": path})
    )
    monkeypatch.setattr(lifecycle, "configure_logging", lambda *args, **kwargs: None)
    built: list[Settings] = []

    def build_source(source_settings: Settings, stop: threading.Event) -> StubSource:
        built.append(source_settings)
        return StubSource()

    monkeypatch.setattr(entry, "build_source", build_source)
    chain = ChainFileSource._chain
    signalled: list[bool] = []

    def chain_then_sigterm(self: ChainFileSource, rows: list[dict[str, str]]) -> Any:
        if not signalled:
            signalled.append(True)
            signal.raise_signal(signal.SIGTERM)
            assert self._stop.wait(10), "SIGTERM did not reach the chain source"
        return chain(self, rows)

    monkeypatch.setattr(ChainFileSource, "_chain", chain_then_sigterm)
    unhandled: list[int] = []
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    signal.signal(signal.SIGTERM, lambda signum, frame: unhandled.append(signum))
    try:
        entry.main()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    assert signalled and unhandled == []  # main() had its handler in place already
    assert built == []  # the main source was never started
    assert redis_client.xlen(streams.CHAINS) <= 1  # 3 snapshots, stopped after the first


@pytest.mark.slow
def test_after_a_replay_ingest_trims_its_bars_as_they_are_read(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """Ingest writes the bars' stream, so it trims it: a slow group leaves more than the limit
    unread at the end of a replay; watching over what it published, ingest trims what that
    group acknowledges until within the limit, and never an unread bar."""
    replay = FileReplaySource(DATA_DIR, SHORT_WINDOW).events()
    bars = [e for e in replay if isinstance(e, Bar)][:600]
    small = settings.model_copy(update={"stream_maxlen": 100})
    redis_client.xgroup_create(streams.BARS, "features", id="0", mkstream=True)
    service = IngestService(small, StubSource(list(bars)))
    assert service.run()["published"] == len(bars)
    assert redis_client.xlen(streams.BARS) == len(bars)  # none read: none trimmed
    report = next(r for r in read_health(redis_client) if r["service"] == "ingest")
    assert any("not acknowledged by every group" in r for r in report["degraded_reasons"])

    def slow_group() -> None:
        while entries := replies.xreadgroup(redis_client, "features", "f1", streams.BARS, ">", 50):
            redis_client.xack(streams.BARS, "features", *[i for i, _ in entries])

    reader = threading.Thread(target=slow_group)
    reader.start()
    wait_for(
        lambda: (
            not service.keep_published()
            and service.bars_trim.length is not None
            and service.bars_trim.length <= small.stream_maxlen
        ),
        timeout_s=30,
        message="the bars trimmed within the limit as they are read",
    )
    reader.join()
    assert redis_client.xlen(streams.BARS) <= small.stream_maxlen
    pending = redis_client.xpending(streams.BARS, "features")["pending"]
    assert pending == 0
