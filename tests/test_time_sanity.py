"""Time sanity on the stream's own clock: one near-future bar on aegis:bars (written by
another holder of the ingest credential) is held, then refused when its series' next bar is
older; every real bar still yields its snapshot. A real jump (a gap in the data, a feed back
after an outage) is applied one bar late, not refused."""

from __future__ import annotations

from datetime import date, datetime

import pytest
import redis

from services.features.sequencing import admit
from services.features.state import FeatureState
from shared.bus import replies, streams
from shared.config import Settings
from shared.contract.codec import encode
from shared.contract.schemas import Bar, DeadLetter
from shared.market.calendar import IST, beyond_next_session
from tests.bus_reads import decoded, messages
from tests.pipeline import feature_payloads, ingest, run_features


def at(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=IST).timestamp())


def bar(when: str, interval: str = "1m", close: float = 15_000.0) -> Bar:
    return Bar(
        symbol="NIFTY",
        interval=interval,
        open_time=at(when),
        open=close,
        high=close + 5,
        low=close - 5,
        close=close,
        source="test",
    )


def test_a_bar_past_the_next_session_is_held_and_its_series_decides() -> None:
    clock = at("2021-03-05 15:29")  # a Friday
    assert not beyond_next_session(at("2021-03-08 09:15"), clock)  # Monday: the next session
    assert not beyond_next_session(at("2021-03-06 10:00"), clock)  # a special Saturday
    assert beyond_next_session(at("2021-03-09 09:15"), clock)

    far = bar("2021-05-03 10:00")
    first = admit(far, 0, "9-0", {}, clock)
    assert first.ready == () and first.refused == () and "NIFTY:1m" in first.held
    assert "past the first session after" in first.held["NIFTY:1m"].why
    # the series' next bar is older: the held one was out of sequence
    real = bar("2021-03-05 15:29")
    older = admit(real, 0, "10-0", first.held, clock)
    assert older.ready == ((real, 0),) and older.held == {}
    assert older.refused[0][0].entry_id == "9-0" and "out of sequence" in older.refused[0][1]
    # ... or newer: a real jump, both applied in order
    later = bar("2021-05-03 10:01")
    newer = admit(later, 0, "11-0", first.held, clock)
    assert newer.ready == ((far, 0), (later, 0)) and newer.refused == () and newer.held == {}
    # other series pass by a held one; the first bar of a stream has nothing to judge by
    vix = Bar(**{**bar("2021-03-08 09:15", "1d").model_dump(), "symbol": "VIX"})
    assert admit(vix, 0, "12-0", first.held, clock).held == first.held
    assert admit(far, 0, "13-0", {}, None).ready == ((far, 0),)


def test_held_bars_survive_a_checkpoint() -> None:
    state = FeatureState()
    state.clock_s = at("2021-03-05 15:29")
    state.held = admit(bar("2021-05-03 10:00"), 2, "9-0", {}, state.clock_s).held
    restored = FeatureState.from_checkpoint(state.to_checkpoint())
    assert restored.clock_s == state.clock_s and restored.held == state.held


def _features_with(
    settings: Settings,
    client: redis.Redis,
    entries: list[replies.Entry],
    extra: Bar | None,
    after: int,
) -> tuple[list[bytes], list[str]]:
    """The replay's bar entries on a fresh stream, ``extra`` written after entry ``after``
    (as any writer could XADD it); the features' snapshots and dead-letter reasons."""
    client.flushall()
    pipe = client.pipeline(transaction=False)
    for i, (_, fields) in enumerate(entries):
        replies.xadd(pipe, streams.BARS, fields)
        if extra is not None and i == after:
            replies.xadd(pipe, streams.BARS, encode(extra))
    pipe.execute()
    run_features(settings)
    reasons = [d.reason for d in messages(client, streams.DEAD_LETTER, DeadLetter)]
    return feature_payloads(client), reasons


@pytest.mark.slow
def test_one_near_future_bar_costs_that_bar_only(
    settings: Settings, redis_client: redis.Redis
) -> None:
    ingest(settings)
    entries = replies.xrange(redis_client, streams.BARS)
    minutes = [
        i
        for i, (_, f) in enumerate(entries)
        if (b := decoded(f, Bar)).interval == "1m" and b.open_time >= at("2021-03-02 11:00")
    ]
    middle = minutes[0]  # the replay's second session, mid-morning
    reference, none = _features_with(settings, redis_client, entries, None, middle)
    assert len(reference) > 1000 and none == []
    close = decoded(entries[middle][1], Bar).close
    for poison in (bar("2021-05-03 10:00", close=close), bar("2021-06-01 09:15", "1d", close)):
        snapshots, reasons = _features_with(settings, redis_client, entries, poison, middle)
        assert snapshots == reference, poison.interval  # no real minute or session dropped
        assert len(reasons) == 1 and "out of sequence" in reasons[0], reasons
        assert date.fromtimestamp(poison.open_time).isoformat() in reasons[0]
