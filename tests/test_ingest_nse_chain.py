"""The live NSE chain source over recorded real NSE responses (tests/fixtures/nse): chains
during market hours, none outside, backoff on 403/429/5xx and malformed JSON without
stopping, and a failing feed reported as degraded in ingest health."""

from __future__ import annotations

import threading
from datetime import date, datetime

import pytest
import redis

from services.gateway.assembler import health_section
from services.ingest.main import IngestService
from services.ingest.sources.chain_feed import ChainFeedError, ChainPollSource, select_expiries
from services.ingest.sources.feed_status import feed_problem
from services.ingest.sources.nse_chain import NseChainFeed
from shared.bus.worker import read_health
from shared.config import Settings
from shared.contract.schemas import OptionChain
from shared.market.calendar import IST
from tests.fixtures.nse import recorded
from tests.fixtures.nse.recorded_http import RecordedNse, session
from tests.narrowing import every

OPEN = datetime(2022, 3, 28, 10, 50, tzinfo=IST).timestamp()  # a Monday session
SUNDAY = datetime(2022, 3, 27, 12, 0, tzinfo=IST).timestamp()


class FakeTime:
    """Waits advance the clock at once; the source stops once ``until`` has passed."""

    def __init__(self, start: float, until: float) -> None:
        self.now, self.until = start, until
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.waits.append(round(seconds, 3))
        self.now += seconds
        return self.now > self.until


def source(
    settings: Settings, adapter: RecordedNse, start: float, seconds: float
) -> tuple[ChainPollSource, FakeTime]:
    fake = FakeTime(start, start + seconds)
    feed = NseChainFeed(session(adapter))
    return ChainPollSource(feed, settings, clock=fake.clock, wait=fake.wait, rng=lambda: 0.5), fake


def test_select_nearest_weeklies_and_the_monthly() -> None:
    listed = [
        datetime.strptime(e, "%d-%b-%Y").date() for e in recorded.contract_info()["expiryDates"]
    ]
    assert select_expiries(listed, date(2022, 3, 28), 2) == [
        date(2022, 3, 31),
        date(2022, 4, 7),
        date(2022, 4, 28),  # 31-Mar is both weekly and monthly: next month's monthly
    ]
    assert select_expiries(listed, date(2022, 4, 1), 2) == [
        date(2022, 4, 7),
        date(2022, 4, 13),
        date(2022, 4, 28),
    ]


def test_publishes_three_expiries_while_open_then_nothing_new(settings: Settings) -> None:
    adapter = RecordedNse()
    src, _ = source(settings, adapter, OPEN, settings.chain_poll_s * 1.5)
    events = every(src.events(), OptionChain)
    assert [e.expiry for e in events] == ["2022-03-31", "2022-04-07", "2022-04-28"]
    first = events[0]
    assert (first.snapshot_time, first.spot, first.lot_size) == (1648444639, 17022.5, 50)
    real = next(r for r in recorded.rows_of("31-Mar-2022") if r["strikePrice"] == 17000)
    q = next(q for q in first.quotes if q.strike == 17000)
    assert (
        q.ce_oi == real["CE"]["openInterest"] * 50
        and q.ce_iv == real["CE"]["impliedVolatility"] / 100
    )
    # the second poll finds the same NSE timestamp: nothing is published twice
    assert sum(p.startswith("/api/option-chain-v3") for p in adapter.requests) == 6
    status = src.status
    assert status["state"] == "ok" and feed_problem(status) is None
    assert adapter.cookie_pages == 1


def test_a_frozen_nse_page_is_published_but_reported_stale(settings: Settings) -> None:
    late = datetime(2022, 3, 28, 13, 0, tzinfo=IST).timestamp()  # NSE still says 10:47:19
    src, _ = source(settings, RecordedNse(), late, 30)
    assert len(list(src.events())) == 3
    status = src.status
    assert status["state"] == "stale" and status["stale_series"] == [
        "2022-03-31",
        "2022-04-07",
        "2022-04-28",
    ]
    problem = feed_problem(status)
    assert problem is not None and "stale 2022-03-31" in problem


def test_nothing_outside_market_hours(settings: Settings) -> None:
    adapter = RecordedNse()
    src, _ = source(settings, adapter, SUNDAY, 3600)
    assert list(src.events()) == []
    assert adapter.requests == []
    status = src.status
    assert status["state"] == "closed" and feed_problem(status) is None
    assert status["next_poll_at"] == datetime(2022, 3, 28, 9, 15, tzinfo=IST).timestamp()


def test_backs_off_on_403_429_5xx_and_garbage_then_recovers(settings: Settings) -> None:
    script: dict[str, list[int | str]] = {
        "/api/option-chain-contract-info": [429, 503],
        "/api/option-chain-v3": [403, 403, "garbage"],
    }
    adapter = RecordedNse(script)
    src, fake = source(settings, adapter, OPEN, 60)
    events = every(src.events(), OptionChain)
    assert [e.expiry for e in events] == ["2022-03-31", "2022-04-07", "2022-04-28"]
    # exponential backoff with jitter (rng 0.5 -> +0.5 s): 2.5, 4.5 on the expiry list, then
    # 403 twice (the cookie refresh in between does not help) -> 2.5, garbage -> 4.5; the
    # token bucket tops each gap up to AEGIS_CHAIN_MIN_INTERVAL_S (3 s)
    assert fake.waits[:8] == [2.5, 0.5, 4.5, 3.0, 2.5, 0.5, 4.5, 3.0]
    # first visit, the refresh after the first 403, and a fresh visit before the retry
    assert adapter.cookie_pages == 3
    assert src.status["state"] == "ok" and src.status["consecutive_failures"] == 0


def test_json_that_is_not_a_chain_is_a_retried_failure(settings: Settings) -> None:
    adapter = RecordedNse({"/api/option-chain-v3": ["empty"]})
    src, _ = source(settings, adapter, OPEN, 60)
    assert len(list(src.events())) == 3
    assert src.status["state"] == "ok"
    feed = NseChainFeed(session(RecordedNse({"/api/option-chain-v3": ["empty"]})))
    with pytest.raises(ChainFeedError, match="unexpected response") as failure:
        feed.chain(date(2022, 3, 31))
    assert failure.value.retryable


def test_a_failing_feed_keeps_polling_and_is_degraded_in_health(
    settings: Settings, redis_client: redis.Redis
) -> None:
    retries = settings.chain_max_retries
    adapter = RecordedNse({"/api/option-chain-contract-info": [429] * retries})
    src, fake = source(settings, adapter, OPEN, 100)  # one poll, every retry fails
    assert list(src.events()) == []
    assert fake.waits[-1] == settings.chain_poll_s  # waiting for the next poll, not stopped
    status = src.status
    assert status["state"] == "failing" and status["rate_limited"]
    problem = feed_problem(status)
    assert problem is not None and "rate limited" in problem and "HTTP 429" in problem

    # the ingest service reports it like the yfinance feed: degraded, with the reason
    service = IngestService(settings, src, client=redis_client)
    service._write_health(force=True)
    (report,) = [r for r in read_health(redis_client) if r["consumer"] == "chain:nse"]
    assert report["status"] == "degraded" and "HTTP 429" in report["degraded_reasons"][0]
    section = health_section([report], volatile=False)
    assert section["engines"]["ingest"]["status"] == "degraded"

    # and polling goes on: the next poll (the queue is empty now) succeeds
    src2, _ = source(settings, adapter, OPEN, 30)
    assert len(list(src2.events())) == 3


def test_close_interrupts_the_wait(settings: Settings) -> None:
    src = ChainPollSource(NseChainFeed(session(RecordedNse())), settings, clock=lambda: SUNDAY)
    out: list[object] = []
    thread = threading.Thread(target=lambda: out.extend(src.events()))
    thread.start()
    src.close()
    thread.join(timeout=5)
    assert not thread.is_alive() and out == []


def test_runner_starts_the_live_chain_feed_beside_the_bars(settings: Settings) -> None:
    from services.ingest.__main__ import Runner

    assert Runner(settings)._start_chain_feed() is None  # AEGIS_CHAIN_SOURCE=none
    runner = Runner(settings.model_copy(update={"chain_source": "nse"}))
    runner.stop_event.set()  # stopped before it starts: no request leaves the machine
    thread = runner._start_chain_feed()
    assert thread is not None and runner._chain_feed is not None
    assert runner._chain_feed.source.name == "chain:nse"
    runner.stop()
    thread.join(timeout=10)
    assert not thread.is_alive()
