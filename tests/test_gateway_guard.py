"""Issue 10, finding 3: a block dated past the calendar, or ahead of the clock or of the newest
input, is refused with a reason (dead letter + labelled metric); it neither freezes the
document nor kills a background task, and a poisoned latest-blocks entry does not survive a
restart."""

from __future__ import annotations

import time
from datetime import date
from typing import Any

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from services.gateway.guard import Rejection, bar_close_s, check_block
from shared.bus import replies, streams
from shared.config import Settings
from shared.contract.codec import unpack
from shared.contract.schemas import DeadLetter, SignalBlock
from shared.market import calendar
from shared.market.clock import utc_iso_ms
from tests.block_factory import AS_OF, all_blocks, make_block
from tests.bus_reads import messages
from tests.gateway_harness import RunningGateway, publish, wait_for

Y2030 = 1_893_475_800  # 2030-01-01 09:30 IST, past the calendar's last session
TOLERANCE = 300


def poisoned(engine: str = "market") -> SignalBlock:
    """Schema-valid, absurd: the fault campaign's block."""
    block = make_block(engine, as_of=Y2030, spot=1.0)
    return block.model_copy(update={"session_date": "2030-01-01"})


def next_year_session_block() -> SignalBlock:
    """In the calendar, but months ahead of the wall clock."""
    day = calendar.next_session(date.fromtimestamp(time.time() + 200 * 86400))
    as_of = calendar.daily_open_time(day) + 3600
    return make_block("market", as_of=as_of).model_copy(update={"session_date": day.isoformat()})


def sample(gw: RunningGateway, name: str, **labels: str) -> float:
    text = httpx.get(gw.url + "/metrics").text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return 0.0


def doc(gw: RunningGateway) -> dict:
    return httpx.get(gw.url + "/api/v1/document").json()


def dead_letters(client: redis.Redis) -> list[DeadLetter]:
    return messages(client, streams.DEAD_LETTER, DeadLetter)


def latest_block(client: redis.Redis, engine: str) -> dict[str, Any]:
    """The payload of ``engine``'s block in the latest-blocks hash (it must be there)."""
    raw = replies.hget_bytes(client, streams.LATEST_BLOCKS, engine)
    assert raw is not None, f"no latest {engine} block"
    return unpack(raw)


# Pure rules ------------------------------------------------------------------------------
def test_check_block_names_the_rule_a_block_breaks() -> None:
    now = time.time()

    def check(block: SignalBlock, newest_input_s: int | None = None) -> Rejection | None:
        return check_block(
            block, wall_now_s=now, newest_input_s=newest_input_s, tolerance_s=TOLERANCE
        )

    assert check(make_block("market")) is None
    outside = check(poisoned())
    assert outside is not None and outside.reason == "outside_calendar"
    sunday = check(make_block("market").model_copy(update={"session_date": "2025-06-29"}))
    assert sunday is not None and sunday.reason == "outside_calendar"
    ahead = check(next_year_session_block())
    assert ahead is not None and ahead.reason == "ahead_of_clock"
    # input: the newest bar closed at AS_OF; a block may lead it by the tolerance, not more
    assert check(make_block("market", as_of=AS_OF + TOLERANCE), AS_OF) is None
    late = check(make_block("market", as_of=AS_OF + TOLERANCE + 60), AS_OF)
    assert late is not None and late.reason == "ahead_of_input"
    assert "360 s after the close of the newest input bar" in late.detail


def test_bar_close_of_minute_and_daily_bars() -> None:
    day = date(2025, 6, 30)
    assert bar_close_s("1m", AS_OF - 60) == AS_OF
    assert bar_close_s("5m", AS_OF - 300) == AS_OF
    assert bar_close_s("1d", calendar.daily_open_time(day)) == calendar.daily_close_time(day)


# The running gateway ---------------------------------------------------------------------
def test_a_block_past_the_calendar_is_dead_lettered_and_the_document_moves_on(
    settings: Settings, redis_client: redis.Redis
) -> None:
    publish(settings, *all_blocks())
    with RunningGateway(settings) as gw:
        wait_for(lambda: doc(gw)["sequence"] == 4, 5, "the four blocks")
        publish(settings, poisoned(), make_block("market", as_of=AS_OF + 60, spot=25_650.0))
        wait_for(lambda: doc(gw)["sequence"] == 5, 5, "the good block after the bad one")
        market = doc(gw)["market"]
        assert market["spot"] == 25_650.0 and market["as_of"] == utc_iso_ms((AS_OF + 60) * 1000)
        assert not any(doc(gw)[e]["stale"] for e in ("market", "direction", "seller", "buyer"))
        assert (
            sample(
                gw,
                "aegis_gateway_rejected_blocks_total",
                engine="market",
                reason="outside_calendar",
            )
            == 1.0
        )
        letters = wait_for(lambda: dead_letters(redis_client), 5, "the dead letter")
        assert len(letters) == 1 and letters[0].service == "gateway"
        assert letters[0].origin_stream == streams.BLOCKS
        assert letters[0].reason.startswith("outside_calendar: as_of 2030-01-01")
        assert unpack(letters[0].payload)["as_of"] == Y2030  # nothing lost: the payload is kept
        assert httpx.get(gw.url + "/readyz").status_code == 200
        assert httpx.get(gw.url + "/healthz").status_code == 200


def test_a_block_ahead_of_the_wall_clock_leaves_every_background_task_running(
    settings: Settings,
) -> None:
    wall = settings.model_copy(update={"clock": "wall"})
    publish(wall, make_block("market"))
    with RunningGateway(wall, tick_s=0.02) as gw:
        wait_for(lambda: doc(gw)["sequence"] >= 1, 5, "the first block")
        publish(wall, next_year_session_block(), poisoned("seller"))
        wait_for(
            lambda: (
                sample(
                    gw,
                    "aegis_gateway_rejected_blocks_total",
                    engine="seller",
                    reason="outside_calendar",
                )
                == 1.0
            ),
            5,
            "both refused",
        )
        assert (
            sample(
                gw, "aegis_gateway_rejected_blocks_total", engine="market", reason="ahead_of_clock"
            )
            == 1.0
        )
        assert doc(gw)["market"]["as_of"] == utc_iso_ms(AS_OF * 1000)
        assert doc(gw)["seller"] is None
        ticks = doc(gw)["sequence"]
        assert gw.app.state.tasks.healthy, gw.app.state.tasks.failed
        assert httpx.get(gw.url + "/healthz").json()["status"] == "alive"
        publish(wall, make_block("buyer"))
        wait_for(lambda: doc(gw)["sequence"] > ticks and doc(gw)["buyer"], 5, "later blocks")


def test_a_block_ahead_of_the_newest_input_bar_is_refused_until_the_bar_exists(
    settings: Settings, redis_client: redis.Redis
) -> None:
    redis_client.hset(streams.series_state("NIFTY", "1m"), "open_time", AS_OF - 60)
    publish(settings, make_block("market"))
    with RunningGateway(settings) as gw:
        wait_for(lambda: doc(gw)["sequence"] == 1, 5, "the block at the input")
        hour_later = make_block("market", as_of=AS_OF + 3600, spot=25_700.0)
        publish(settings, hour_later)
        wait_for(
            lambda: (
                sample(
                    gw,
                    "aegis_gateway_rejected_blocks_total",
                    engine="market",
                    reason="ahead_of_input",
                )
                == 1.0
            ),
            5,
            "refused: no bar that late yet",
        )
        assert doc(gw)["sequence"] == 1
        # the bar arrives; the same block published again is taken at once (no poll wait)
        redis_client.hset(streams.series_state("NIFTY", "1m"), "open_time", AS_OF + 3540)
        publish(settings, hour_later)
        wait_for(lambda: doc(gw)["sequence"] == 2, 5, "taken once the input caught up")
        assert doc(gw)["market"]["spot"] == 25_700.0
        assert sample(gw, "aegis_gateway_newest_input_close_seconds") == AS_OF + 3600


@pytest.mark.parametrize("clock", ["event", "wall"])
def test_a_poisoned_latest_entry_does_not_freeze_the_document_after_a_restart(
    settings: Settings, redis_client: redis.Redis, clock: str
) -> None:
    settings = settings.model_copy(update={"clock": clock})
    good = make_block("market", as_of=AS_OF, spot=25_600.0)
    publish(settings, good, *all_blocks()[1:], poisoned())  # latest market: the 2030 block
    assert latest_block(redis_client, "market")["as_of"] == Y2030
    with RunningGateway(settings) as gw:
        wait_for(lambda: doc(gw)["market"], 5, "market from the stream, not the hash")
        assert doc(gw)["market"]["spot"] == 25_600.0
        assert redis_client.hget(streams.LATEST_BLOCKS, "market") is None  # removed
        letters = wait_for(lambda: dead_letters(redis_client), 5, "the dead letter")
        assert [(x.origin_stream, x.origin_id) for x in letters] == [
            (streams.LATEST_BLOCKS, "market")
        ]
        # engines update the hash again, and the gateway follows
        publish(settings, make_block("market", as_of=AS_OF + 60, spot=25_650.0))
        wait_for(lambda: doc(gw)["market"]["spot"] == 25_650.0, 5, "the next block")
    assert latest_block(redis_client, "market")["as_of"] == AS_OF + 60
    with RunningGateway(settings) as gw:  # and after another restart
        wait_for(lambda: doc(gw)["market"], 5, "loaded")
        assert doc(gw)["market"]["spot"] == 25_650.0
        assert httpx.get(gw.url + "/healthz").status_code == 200


def test_a_flood_of_refused_blocks_is_counted_in_full_and_logged_once(
    settings: Settings, capfd: pytest.CaptureFixture[str]
) -> None:
    with RunningGateway(settings) as gw:
        flood = [
            make_block("market", as_of=Y2030 + 60 * i, spot=1.0 + i).model_copy(
                update={"session_date": "2030-01-01"}
            )
            for i in range(200)
        ]
        publish(settings, *flood)
        wait_for(
            lambda: (
                sample(
                    gw,
                    "aegis_gateway_rejected_blocks_total",
                    engine="market",
                    reason="outside_calendar",
                )
                == 200.0
            ),
            10,
            "every refusal counted",
        )
    out, err = capfd.readouterr()
    assert (out + err).count("block_refused") == 1


def test_log_limiter_writes_one_line_per_interval_and_counts_the_rest() -> None:
    from services.gateway.loglimit import LogLimiter

    limiter = LogLimiter(interval_s=0.2)
    started = time.monotonic()
    assert limiter.allow("a") == 0
    assert [limiter.allow("a") for _ in range(5)] == [None] * 5
    assert limiter.allow("b") == 0  # per key
    wait_for(lambda: time.monotonic() - started >= 0.3, 2, "the interval")
    assert limiter.allow("a") == 5  # the next line says five were left out
    assert limiter.allow("a") is None
