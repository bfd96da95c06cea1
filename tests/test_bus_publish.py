"""Idempotent bar publishing on a real Redis."""

from __future__ import annotations

import redis

from shared.bus import replies, streams
from shared.bus.publish import Bus
from shared.config import Settings
from shared.contract.schemas import Bar
from tests.bus_reads import decoded


def bar(open_time: int, close: float, final: bool = True) -> Bar:
    return Bar(
        symbol="NIFTY",
        interval="1m",
        open_time=open_time,
        open=100.0,
        high=max(101.0, close),
        low=min(99.0, close),
        close=close,
        final=final,
        source="test",
    )


def test_duplicate_bars_are_published_once(settings: Settings, redis_client: redis.Redis) -> None:
    bus = Bus(redis_client, settings)
    bars = [bar(60 * i, 100.0 + i * 0.1) for i in range(5)]
    first = bus.publish_bars(bars)
    again = bus.publish_bars(bars)
    assert [r.outcome for r in first] == ["published"] * 5
    assert [r.outcome for r in again] == ["duplicate"] * 5
    assert redis_client.xlen(streams.BARS) == 5


def test_revision_of_open_bar_supersedes_it(settings: Settings, redis_client: redis.Redis) -> None:
    bus = Bus(redis_client, settings)
    results = bus.publish_bars(
        [bar(0, 100.2, final=False), bar(0, 100.5, final=False), bar(0, 100.7, final=True)]
    )
    assert [r.outcome for r in results] == ["published"] * 3
    entries = replies.xrange(redis_client, streams.BARS)
    assert [int(f[b"r"]) for _, f in entries] == [0, 1, 2]
    assert decoded(entries[-1][1], Bar).close == 100.7


def test_closed_bar_cannot_be_rewritten_and_old_bars_are_rejected(
    settings: Settings, redis_client: redis.Redis
) -> None:
    bus = Bus(redis_client, settings)
    bus.publish_bars([bar(0, 100.2), bar(60, 100.3)])
    rewrite, older = bus.publish_bars([bar(60, 100.9), bar(0, 99.5)])
    assert rewrite.outcome == "conflict" and "closed" in rewrite.detail
    assert older.outcome == "conflict"
    late_new_series = bus.publish_bars([bar(30, 100.0)])[0]
    assert late_new_series.outcome == "out_of_order" and "older" in late_new_series.detail
    assert redis_client.xlen(streams.BARS) == 2
