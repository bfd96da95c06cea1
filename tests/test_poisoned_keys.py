"""A value any service user can write into a shared hash (series state, latest-block times)
is one record: written corrupt, it is quarantined for that read (counted, in health) and the
consumers go on; the next good write heals it. Before, one such field stopped the gateway's
block consumer for good and made the seller exit on every batch (a Lua comparison error)."""

from __future__ import annotations

import httpx
import redis

from services.seller.main import SellerWorker
from shared.bus import held, replies, streams
from shared.bus.publish import Bus
from shared.config import Settings
from shared.contract.schemas import Bar
from tests.block_factory import make_block
from tests.engines_support import daily_snapshot
from tests.gateway_harness import RunningGateway, publish, wait_for
from tests.test_engines import running, wait_blocks
from tests.test_gateway_resilience import get_doc


def minute_bar(open_time: int, close: float = 25_000.0) -> Bar:
    return Bar(
        symbol="NIFTY",
        interval="1m",
        open_time=open_time,
        open=close,
        high=close + 5,
        low=close - 5,
        close=close,
        source="test",
    )


def test_a_corrupt_series_state_is_read_as_absent_and_healed(
    settings: Settings, redis_client: redis.Redis
) -> None:
    bus = Bus(redis_client, settings)
    t0 = 1_769_000_000 // 60 * 60
    assert bus.publish_bars([minute_bar(t0)])[0].outcome == "published"
    key = streams.series_state("NIFTY", "1m")
    redis_client.hset(key, mapping={"open_time": "x", "seq": "y", "revision": "z"})
    before = held.quarantined[f"{key} open_time"]
    assert bus.last_open_time("NIFTY", "1m") is None
    assert bus.positions([("NIFTY", "1m")]) == {}
    assert held.quarantined[f"{key} open_time"] == before + 2
    assert any("open_time" in r for r in held.degraded_reasons())
    # the publish script treats the corrupt fields as absent and overwrites them
    result = bus.publish_bars([minute_bar(t0 + 60)])[0]
    assert result.outcome == "published" and result.seq == 1
    assert bus.last_open_time("NIFTY", "1m") == t0 + 60


def test_a_corrupt_latest_as_of_does_not_stop_the_seller(
    settings: Settings, redis_client: redis.Redis
) -> None:
    redis_client.hset(streams.LATEST_BLOCKS + ":as_of", "seller", "x")
    bus = Bus(redis_client, settings)
    bus.publish(daily_snapshot("2025-06-27"))
    with running(SellerWorker, settings):
        (block,) = wait_blocks(redis_client, "seller", 1)
    as_of = replies.hget_bytes(redis_client, streams.LATEST_BLOCKS + ":as_of", "seller")
    assert as_of is not None and int(as_of) == block.as_of


def test_the_gateway_serves_with_a_corrupt_series_state(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """Before: the block consumer failed on every read and ended; /readyz stayed 503 with an
    empty document until the key was deleted by hand."""
    redis_client.hset(streams.series_state("NIFTY", "5m"), "open_time", "x")
    publish(settings, make_block("market"))
    with RunningGateway(settings) as gw:
        wait_for(lambda: get_doc(gw)["market"] is not None, 5, "the market block")
        publish(settings, make_block("seller"))
        wait_for(lambda: get_doc(gw)["seller"] is not None, 5, "a block read after start")
        assert httpx.get(gw.url + "/readyz").status_code == 200
