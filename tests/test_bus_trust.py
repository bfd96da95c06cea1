"""Issue 10, findings 1, 2, 8 and 15 on a real Redis: bad bars written straight into
aegis:bars (bypassing ingest), a future-dated bar, labelled drops, degraded health, and the
daily snapshots a fast replay must store."""

from __future__ import annotations

import time
from typing import Any

import msgpack
import pytest
import redis

from services.ingest.main import IngestService
from services.ingest.sources.file_replay import FileReplaySource
from shared.bus import streams
from shared.bus.publish import Bus
from shared.bus.worker import read_health
from shared.config import Settings
from shared.contract.codec import encode
from shared.contract.schemas import Bar, DeadLetter, FeatureSnapshot
from shared.market import calendar
from tests.bus_reads import add, hash_items, messages, newest
from tests.pipeline import DATA_DIR, SHORT_WINDOW, feature_payloads, run_features
from tests.test_ingest_service import StubSource

pytestmark = pytest.mark.slow

FUTURE = calendar.daily_open_time(calendar.next_session(calendar.ist_date(int(time.time())))) + 3600


def real_bars() -> list[Bar]:
    return [e for e in FileReplaySource(DATA_DIR, SHORT_WINDOW).events() if isinstance(e, Bar)]


def raw(bar: Bar, **changes: Any) -> dict[str, Any]:
    """Stream entry fields of ``bar`` with payload fields changed (None removes one)."""
    payload = bar.model_dump(mode="python")
    for key, value in changes.items():
        if value is None:
            payload.pop(key, None)
        else:
            payload[key] = value
    return {"t": "bar", "v": 1, "d": msgpack.packb(payload, use_bin_type=True)}


def bad_entries(last: Bar, last_daily: Bar) -> list[tuple[str, dict[str, Any]]]:
    """32 kinds of bad entries, each made next to the last real minute ``last``."""
    t = last.open_time + 60
    nan, inf = float("nan"), float("inf")
    o = {"open_time": t}
    ten_x = {k: getattr(last_daily, k) * 10 for k in ("open", "high", "low", "close")}
    jump = {k: getattr(last, k) * 1.3 for k in ("open", "high", "low", "close")}
    return [
        ("nan close", raw(last, **o, close=nan)),
        ("nan open", raw(last, **o, open=nan)),
        ("inf high", raw(last, **o, high=inf)),
        ("-inf low", raw(last, **o, low=-inf)),
        ("zero close", raw(last, **o, close=0.0, low=0.0)),
        ("all zero", raw(last, **o, open=0.0, high=0.0, low=0.0, close=0.0)),
        ("negative close", raw(last, **o, close=-5.0, low=-5.0)),
        ("negative all", raw(last, **o, open=-5.0, high=-5.0, low=-5.0, close=-5.0)),
        ("high below low", raw(last, **o, high=last.low - 10)),
        ("close above high", raw(last, **o, close=last.high + 10)),
        ("open below low", raw(last, **o, open=last.low - 10)),
        ("spot 1e12", raw(last, **o, open=1e12, high=1e12, low=1e12, close=1e12)),
        ("spot 1.0", raw(last, **o, open=1.0, high=1.0, low=1.0, close=1.0)),
        ("30 % jump", raw(last, **o, **jump)),
        ("far future", raw(last, open_time=FUTURE)),
        ("a year ahead", raw(last, open_time=FUTURE + 365 * 86400)),
        ("far past", raw(last, open_time=631_152_000)),  # 1990
        ("epoch zero", raw(last, open_time=0)),
        ("3 am", raw(last, open_time=calendar.daily_open_time(calendar.ist_date(t)) - 6 * 3600)),
        ("not a minute start", raw(last, open_time=t + 7)),
        ("daily not at 09:15", raw(last_daily, open_time=last_daily.open_time + 60)),
        (
            "daily 10x",
            raw(last_daily, open_time=calendar.daily_open_time(calendar.ist_date(t)), **ten_x),
        ),
        ("negative volume", raw(last, **o, volume=-1.0)),
        ("wrong symbol", raw(last, **o, symbol="BANKNIFTY")),
        ("wrong interval", raw(last, **o, interval="3m")),
        ("unused series", raw(last, **o, interval="5m")),
        ("missing close", raw(last, **o, close=None)),
        ("oversized", raw(last, **o, source="x" * (1 << 20))),
        ("unknown field", raw(last, **o, junk="y")),
        ("not msgpack", {"t": "bar", "v": 1, "d": b"\xc1\xc1 not msgpack"}),
        ("no payload", {"t": "bar", "v": 1}),
        ("wrong version", {**raw(last, **o), "v": 99}),
    ]


def publish_with_bad_entries(
    client: redis.Redis, settings: Settings, bars: list[Bar], bad: bool
) -> dict[str, str]:
    """Publish the real bars in chunks; after the chunk ending at the 40th minute of a
    session, XADD the 32 bad entries. Returns bad entry id -> kind."""
    bus = Bus(client, settings)
    injected: dict[str, str] = {}
    chunk: list[Bar] = []
    last_daily: Bar | None = None
    for bar in bars:
        chunk.append(bar)
        if bar.interval == "1d" and bar.symbol == "NIFTY":
            last_daily = bar
        if bar.interval == "1m" and calendar.minute_of_session(bar.open_time) == 40:
            assert all(r.outcome == "published" for r in bus.publish_bars(chunk))
            chunk = []
            if bad and not injected:
                assert last_daily is not None
                for kind, fields in bad_entries(bar, last_daily):
                    injected[add(client, streams.BARS, fields)] = kind
    bus.publish_bars(chunk)
    return injected


def test_32_kinds_of_bad_bars_are_each_dead_lettered_and_poison_nothing(
    settings: Settings, redis_client: redis.Redis
) -> None:
    bars = real_bars()
    publish_with_bad_entries(redis_client, settings, bars, bad=False)
    run_features(settings)
    clean_snapshots = feature_payloads(redis_client)
    clean_daily = redis_client.hgetall(streams.DAILY_FEATURES)
    clean_latest = redis_client.hgetall(streams.LATEST_BLOCKS)
    redis_client.flushall()

    injected = publish_with_bad_entries(redis_client, settings, bars, bad=True)
    assert len(injected) == 32
    worker = run_features(settings)

    letters = {}
    for letter in messages(redis_client, streams.DEAD_LETTER, DeadLetter):
        letters[letter.origin_id] = letter
    missing = {kind for entry_id, kind in injected.items() if entry_id not in letters}
    assert not missing, f"not dead-lettered: {missing}"
    for entry_id, kind in injected.items():
        letter = letters[entry_id]
        assert letter.service == "features" and letter.reason, kind
        assert len(letter.payload) <= settings.dead_letter_excerpt_bytes, kind
    by_kind = {kind: letters[entry_id] for entry_id, kind in injected.items()}
    oversized = by_kind["oversized"].payload_size
    assert oversized is not None and oversized > 1 << 20
    assert "future" in by_kind["far future"].reason
    assert "not positive" in by_kind["zero close"].reason
    assert "previous minute's close" in by_kind["spot 1e12"].reason
    assert "below low" in by_kind["high below low"].reason
    assert worker.stats["rejected"] + worker.stats["dead_lettered"] >= 32
    assert worker.stats["errors"] == 0  # no handler crashed on a bad price

    # nothing poisoned, no real bar lost: identical to the clean run
    assert feature_payloads(redis_client) == clean_snapshots
    assert redis_client.hgetall(streams.DAILY_FEATURES) == clean_daily
    assert redis_client.hgetall(streams.LATEST_BLOCKS) == clean_latest


def features_health(client: redis.Redis) -> dict[str, Any]:
    return next(r for r in read_health(client) if r["service"] == "features")


def test_a_future_dated_bar_freezes_nothing(settings: Settings, redis_client: redis.Redis) -> None:
    """Finding 2: one bar dated past the clock, through ingest and straight onto the bus."""
    everything = real_bars()
    last_day = calendar.ist_date(everything[-1].open_time)
    # stop mid-session: the last day's minutes up to 11:00, not its daily bars
    bars = [
        b
        for b in everything
        if calendar.ist_date(b.open_time) < last_day
        or (b.interval == "1m" and calendar.minute_of_session(b.open_time) < 105)
    ]
    minutes = [b for b in bars if b.interval == "1m"]
    cut = len(bars) - 50
    future = minutes[-60].model_copy(update={"open_time": FUTURE})
    ingest = IngestService(settings, StubSource([*bars[:cut], future, *bars[cut:]]))
    counts = ingest.run()
    assert counts["published"] == len(bars)
    assert ingest.rejected == {"invalid": 1}
    # and a writer that bypasses ingest: XADD the same bar, then more real minutes after it
    add(redis_client, streams.BARS, encode(future))
    worker = run_features(settings)
    letters = messages(redis_client, streams.DEAD_LETTER, DeadLetter)
    assert [letter.service for letter in letters] == ["ingest", "features"]
    assert all("in the future" in letter.reason for letter in letters)
    snapshots = messages(redis_client, streams.FEATURES, FeatureSnapshot)
    intraday = [s.as_of for s in snapshots if s.kind == "intraday"]
    assert max(intraday) == minutes[-1].open_time + 60
    assert len(intraday) == len(minutes)
    assert worker.state.dropped.get("duplicate", 0) == 0
    later = minutes[-1].model_copy(update={"open_time": minutes[-1].open_time + 60})
    Bus(redis_client, settings).publish_bars([later])
    run_features(settings)
    last = newest(redis_client, streams.FEATURES, FeatureSnapshot)
    assert last.as_of == later.open_time + 60  # the series moved on past the bad bar


def test_drops_are_labelled_and_health_degrades_past_the_threshold(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """Finding 8: a duplicate and an older copy are counted under labels in health; enough
    rejections turn health degraded, with the reason."""
    bars = real_bars()
    Bus(redis_client, settings).publish_bars(bars)
    minutes = [b for b in bars if b.interval == "1m"]
    add(redis_client, streams.BARS, encode(minutes[-1]))  # a duplicate
    add(redis_client, streams.BARS, encode(minutes[-5]))  # older than the last
    for i in range(20):
        add(redis_client, streams.BARS, raw(minutes[-1], open_time=FUTURE + 60 * i))
    strict = settings.model_copy(update={"health_reject_ratio": 0.001})
    worker = run_features(strict)
    assert worker.state.dropped["duplicate"] == 1
    assert worker.state.dropped["older_than_last"] == 1
    report = features_health(redis_client)
    assert report["dropped"]["duplicate"] == 1 and report["rejected"] == 20
    assert report["status"] == "degraded"
    assert any("rejections or errors" in r for r in report["degraded_reasons"])

    redis_client.delete(streams.health("features", worker.consumer))
    lenient = run_features(settings)  # default 5 %: 20 of ~1,800 is not degraded
    assert lenient.stats["rejected"] == 0  # nothing new
    assert features_health(redis_client)["status"] == "ok"


def test_every_daily_snapshot_of_a_fast_batch_is_stored(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """Finding 15: intraday snapshots point at daily_as_of; every such day must be stored."""
    Bus(redis_client, settings).publish_bars(real_bars())
    run_features(settings.model_copy(update={"read_count": 4096}))  # all in one batch
    stored = set(hash_items(redis_client, streams.DAILY_FEATURES))
    snapshots = messages(redis_client, streams.FEATURES, FeatureSnapshot)
    dailies = {s.session_date for s in snapshots if s.kind == "daily"}
    pointed = {s.daily_as_of for s in snapshots if s.kind == "intraday"}
    assert len(dailies) > 100
    assert pointed and pointed <= stored and dailies <= stored


def test_ingest_labels_its_rejections_and_degrades_past_the_threshold(
    settings: Settings, redis_client: redis.Redis
) -> None:
    minutes = [b for b in real_bars() if b.interval == "1m"][:200]
    future = [minutes[0].model_copy(update={"open_time": FUTURE + 60 * i}) for i in range(30)]
    ingest = IngestService(settings, StubSource([*minutes[:100], *future, *minutes[100:]]))
    counts = ingest.run()
    assert counts["published"] == 200 and ingest.rejected == {"invalid": 30}
    report = next(r for r in read_health(redis_client) if r["service"] == "ingest")
    assert report["rejected"] == {"invalid": 30}
    assert report["status"] == "degraded"
    assert "30 of the last 230 bars rejected" in report["degraded_reasons"][0]
