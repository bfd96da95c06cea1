"""Publishing a block on a real Redis: one MULTI/EXEC round trip (no SCRIPT EXISTS before
it), and it keeps working after Redis lost its script cache (a restart, SCRIPT FLUSH)."""

from __future__ import annotations

import pytest
import redis

from shared.bus import replies, streams
from shared.bus.publish import Bus
from shared.config import Settings
from shared.contract.codec import decode
from shared.contract.schemas import Bar, SignalBlock
from tests.block_factory import AS_OF, make_block
from tests.bus_reads import messages
from tests.test_bus_trust import real_bars


def calls(client: redis.Redis, command: str) -> int:
    stats = client.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


def test_a_block_is_published_in_one_round_trip(
    settings: Settings, redis_client: redis.Redis
) -> None:
    bus = Bus(redis_client, settings)
    redis_client.config_resetstat()
    first = make_block("seller", as_of=AS_OF)
    bus.publish(first)
    assert calls(redis_client, "script|exists") == 0
    assert calls(redis_client, "exec") == 1
    [(_, fields)] = replies.xrange(redis_client, streams.BLOCKS)
    assert decode(fields) == first

    redis_client.script_flush()  # what a restarted Redis holds: no scripts
    newer = make_block("seller", as_of=AS_OF + 60, spot=25_700.0)
    bus.publish(newer)
    older = make_block("seller", as_of=AS_OF - 60, spot=25_500.0)
    bus.publish(older)  # on the stream, but the latest stays the newest as_of
    assert messages(redis_client, streams.BLOCKS, SignalBlock) == [first, newer, older]
    latest = redis_client.hget(streams.LATEST_BLOCKS, "seller")
    assert latest is not None and decode({"t": "signal_block", "v": "1", "d": latest}) == newer


@pytest.mark.slow
def test_bars_are_published_without_asking_for_the_script_and_survive_a_flush(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """EVALSHA straight away (no SCRIPT EXISTS round trip per live bar); a Redis without the
    script answers NOSCRIPT, the bus loads it and sends the batch again, nothing doubled."""
    bars = [b for b in real_bars() if b.interval == "1m"][:3]
    bus = Bus(redis_client, settings)
    redis_client.script_flush()
    redis_client.config_resetstat()
    assert [r.outcome for r in bus.publish_bars(bars[:2])] == ["published", "published"]
    assert calls(redis_client, "script|exists") == 0
    assert calls(redis_client, "script|load") == 1  # after the NOSCRIPT answers
    assert [r.outcome for r in bus.publish_bars(bars[1:])] == ["duplicate", "published"]
    assert calls(redis_client, "script|load") == 1 and calls(redis_client, "evalsha") == 6
    assert [b.open_time for b in messages(redis_client, streams.BARS, Bar)] == [
        b.open_time for b in bars
    ]
