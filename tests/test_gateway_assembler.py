"""Pure document assembly: newest block wins, duplicates, staleness, health, schema."""

from __future__ import annotations

from typing import Any

import jsonschema
import orjson

from services.gateway.assembler import (
    DocumentState,
    FeedWatch,
    classify,
    health_section,
    section,
)
from shared.contract.document import document_json_schema
from shared.market.clock import EventClock, utc_iso_ms
from tests.block_factory import AS_OF, all_blocks, make_block

NOW = AS_OF * 1000


def test_document_stamps_are_utc_with_milliseconds() -> None:
    assert utc_iso_ms(1_751_277_600_123) == "2025-06-30T10:00:00.123Z"


def test_classify_newest_as_of_wins_and_duplicates_are_ignored() -> None:
    block = make_block("market")
    assert classify(None, block) == "new"
    assert classify(block, make_block("market")) == "duplicate"
    assert classify(block, make_block("market", spot=25_700.0)) == "update"
    assert classify(block, make_block("market", as_of=AS_OF + 60)) == "new"
    assert classify(block, make_block("market", as_of=AS_OF - 60)) == "older"


def test_sequence_bumps_once_per_change_only() -> None:
    state = DocumentState()
    for block in all_blocks():
        verdict, change = state.offer(block, NOW)
        assert verdict == "new" and change is not None
    assert state.sequence == 4
    assert state.offer(make_block("seller"), NOW) == ("duplicate", None)
    assert state.offer(make_block("seller", as_of=AS_OF - 60), NOW) == ("older", None)
    assert state.sequence == 4
    verdict, change = state.offer(make_block("seller", spot=25_700.0), NOW)
    assert verdict == "update" and state.sequence == 5
    assert change is not None and set(change["blocks"]) == {"seller"}
    assert state.sections["seller"]["safe_range"]["lower"] == round(25_700.0 * 0.975, 1)


def test_section_carries_stamps_and_data() -> None:
    block = make_block("direction", degraded=("direction model failed to load",))
    out = section(block, NOW)
    assert out["as_of"] == "2025-06-30T09:30:00.000Z"
    assert out["computed_at"] == "2025-06-30T09:30:00.180Z"
    assert out["kind"] == "intraday" and out["session_date"] == "2025-06-30"
    assert out["stale"] is False and out["freshness_limit_s"] == 300
    assert out["models"][0]["name"] == "direction"
    assert out["degraded"] == ["direction model failed to load"]
    assert out["today"]["provenance"]["source"] == "heuristic"


def test_stale_once_the_next_bar_is_overdue_by_the_limit_and_back() -> None:
    state = DocumentState()
    state.offer(make_block("market", freshness_limit_s=60), NOW)  # 15:00 IST: 15:01 is due
    assert state.restale(NOW + 120_000) is None  # due + limit exactly: still fresh
    change = state.restale(NOW + 120_001)
    assert change is not None and change["blocks"]["market"]["stale"] is True
    assert state.sequence == 2
    assert state.restale(NOW + 150_000) is None  # no flip, no change
    _, change = state.offer(
        make_block("market", as_of=AS_OF + 180, freshness_limit_s=60), NOW + 180_000
    )
    assert change is not None and change["blocks"]["market"]["stale"] is False


def test_the_last_minute_of_a_session_stays_fresh_until_the_next_open() -> None:
    friday_close = 1_751_018_400  # 2025-06-27 15:30 IST
    block = make_block("market", as_of=friday_close, freshness_limit_s=300)
    monday_first_minute = 1_751_255_160  # 2025-06-30 09:16 IST
    assert section(block, (friday_close + 2 * 86_400) * 1000)["stale"] is False  # Sunday
    assert section(block, (monday_first_minute + 300) * 1000)["stale"] is False
    assert section(block, (monday_first_minute + 301) * 1000)["stale"] is True


def test_event_clock_stales_older_blocks_as_newer_ones_arrive() -> None:
    """With the event clock "now" is the newest as_of seen: a daily block falls stale once
    intraday blocks move past the next session's close plus the limit, whatever the wall time."""
    clock = EventClock()
    state = DocumentState()
    daily = make_block("seller", kind="daily", freshness_limit_s=3 * 3600)
    clock.observe(daily.as_of)
    state.offer(daily, clock.now_ms())
    next_close = 1_751_364_000  # 2025-07-01 15:30 IST, the session after AS_OF's
    later = make_block("market", as_of=next_close + 3 * 3600 + 1)
    clock.observe(later.as_of)
    _, change = state.offer(later, clock.now_ms())
    assert change is not None
    assert change["blocks"]["seller"]["stale"] is True
    assert change["blocks"]["market"]["stale"] is False


def test_same_blocks_give_the_same_document_bytes() -> None:
    def run() -> bytes:
        clock = EventClock()
        state = DocumentState()
        state.set_health(health_section([], volatile=False), clock.now_ms(), publish=False)
        for block in [*all_blocks(), make_block("market", as_of=AS_OF + 60, spot=25_650.0)]:
            clock.observe(block.as_of)
            state.offer(block, clock.now_ms())
        return orjson.dumps(state.document())

    assert run() == run()


def test_health_aggregates_replicas_and_marks_missing_services_down() -> None:
    reports: list[dict[str, Any]] = [
        {
            "service": "direction",
            "consumer": "a",
            "status": "ok",
            "degraded_reasons": [],
            "lag": 3,
            "last_message_at": NOW,
            "models": [
                {"name": "direction", "version": "v1", "trained_at": "2025-06-30T02:00:00Z"}
            ],
        },
        {
            "service": "direction",
            "consumer": "b",
            "status": "degraded",
            "degraded_reasons": ["model direction: manifest mismatch"],
            "lag": 7,
            "last_message_at": NOW + 5,
        },
        {"service": "features", "consumer": "a", "status": "ok", "degraded_reasons": []},
        {"service": "seller", "consumer": "a", "status": "ok", "degraded_reasons": []},
    ]
    health = health_section(reports, volatile=True)
    direction = health["engines"]["direction"]
    assert direction["status"] == "degraded" and direction["replicas"] == 2
    assert direction["degraded_reasons"] == ["model direction: manifest mismatch"]
    assert direction["models"] == [
        {"name": "direction", "version": "v1", "trained_at": "2025-06-30T02:00:00Z"}
    ]
    assert direction["lag"] == 7 and direction["last_message_at"] == utc_iso_ms(NOW + 5)
    assert health["engines"]["buyer"] == {
        "status": "down",
        "replicas": 0,
        "models": [],
        "degraded_reasons": [],
        "last_message_at": None,
        "lag": None,
    }
    assert health["status"] == "degraded"
    assert health_section([], volatile=True)["status"] == "down"
    quiet = health_section(reports, volatile=False)["engines"]["direction"]
    assert quiet["lag"] is None and quiet["last_message_at"] is None


WORKERS_OK: list[dict[str, Any]] = [
    {"service": s, "consumer": "a", "status": "ok", "degraded_reasons": []}
    for s in ("features", "direction", "seller", "buyer")
]


def ingest(
    source: str = "yfinance", *, finished: bool = False, reasons: tuple[str, ...] = ()
) -> dict:
    return {
        "service": "ingest",
        "consumer": source,
        "status": "degraded" if reasons else "ok",
        "degraded_reasons": list(reasons),
        "finished": finished,
    }


def test_a_failing_feed_degrades_the_overall_status() -> None:
    assert health_section(WORKERS_OK, volatile=False)["status"] == "ok"
    healthy = health_section([*WORKERS_OK, ingest()], volatile=False)
    assert healthy["status"] == "ok" and healthy["engines"]["ingest"]["replicas"] == 1
    failing = health_section([*WORKERS_OK, ingest(reasons=("yfinance: HTTP 429",))], volatile=False)
    assert failing["status"] == "degraded"
    assert failing["engines"]["ingest"]["status"] == "degraded"
    assert failing["engines"]["ingest"]["degraded_reasons"] == ["yfinance: HTTP 429"]


def test_a_feed_that_stops_reporting_while_running_is_down_but_a_finished_one_is_not() -> None:
    watch = FeedWatch()
    assert watch.missing(WORKERS_OK) == []  # never seen (e.g. a replay that ended earlier)
    assert "ingest" not in health_section(WORKERS_OK, volatile=False)["engines"]

    assert watch.missing([*WORKERS_OK, ingest("yfinance"), ingest("file")]) == []
    missing = watch.missing([*WORKERS_OK, ingest("file")])  # yfinance's report expired
    assert missing == ["yfinance"]
    dead = health_section([*WORKERS_OK, ingest("file")], volatile=False, missing_feeds=missing)
    assert dead["status"] == "degraded"
    assert dead["engines"]["ingest"]["status"] == "degraded"  # "file" still reports
    assert dead["engines"]["ingest"]["degraded_reasons"] == ["no live report from source yfinance"]
    gone = health_section(WORKERS_OK, volatile=False, missing_feeds=["yfinance"])
    assert gone["engines"]["ingest"]["status"] == "down" and gone["status"] == "degraded"

    # a replay that finished: fine while its last report lives, and after it expires
    assert watch.missing([*WORKERS_OK, ingest("file", finished=True)]) == ["yfinance"]
    assert watch.missing(WORKERS_OK) == ["yfinance"]
    assert (
        health_section([*WORKERS_OK, ingest("file", finished=True)], volatile=False)["status"]
        == "ok"
    )
    # the dead source comes back
    assert watch.missing([*WORKERS_OK, ingest("yfinance")]) == []


def test_health_skips_reports_that_are_not_objects() -> None:
    odd: list[Any] = [*WORKERS_OK, [1, 2], "text", None]  # what a bad health key can hold
    assert FeedWatch().missing(odd) == []
    health = health_section(odd, volatile=False)
    assert health["status"] == "ok" and set(health["engines"]) == {
        "features",
        "direction",
        "seller",
        "buyer",
    }


def test_event_clock_health_rides_along_with_the_next_block() -> None:
    state = DocumentState()
    state.offer(make_block("market"), NOW)
    health = health_section([{"service": "features", "status": "ok"}], volatile=False)
    assert state.set_health(health, NOW, publish=False) is None
    assert (
        state.sequence == 1
        and state.document()["health"]["engines"]["features"]["status"] == "down"
    )
    state.offer(make_block("buyer"), NOW)
    assert state.document()["health"]["engines"]["features"]["status"] == "ok"


def test_document_matches_its_json_schema() -> None:
    state = DocumentState()
    schema = document_json_schema()
    jsonschema.validate(orjson.loads(orjson.dumps(state.document())), schema)
    for block in all_blocks():
        state.offer(block, NOW)
    doc = orjson.loads(orjson.dumps(state.document()))
    jsonschema.validate(doc, schema)
    assert list(doc) == [
        "schema_version",
        "generated_at",
        "epoch",
        "sequence",
        "market",
        "direction",
        "seller",
        "buyer",
        "health",
    ]


def test_a_read_batch_gives_the_document_and_verdicts_of_one_by_one_offers() -> None:
    """The gateway applies a whole read batch at once: newest block per engine, one change;
    the verdicts, sections, stale flags, sequence and generated_at equal those of offering
    the blocks one at a time (an update, a duplicate, an older block, a stale flip inside)."""
    daily = make_block("seller", kind="daily", freshness_limit_s=3 * 3600)
    next_close = 1_751_364_000  # 2025-07-01 15:30 IST, the session after AS_OF's
    later = next_close + 3 * 3600 + 1  # the daily seller block is stale from here
    start = [make_block("market"), daily, make_block("buyer")]
    batch = [
        make_block("market", as_of=AS_OF + 60, spot=25_650.0),
        make_block("market", as_of=AS_OF + 60, spot=25_650.0),  # duplicate in the batch
        make_block("market", as_of=AS_OF + 60, spot=25_660.0),  # update of the batch's own
        make_block("buyer"),  # duplicate of the current one
        make_block("direction", as_of=later),
        make_block("market", as_of=AS_OF + 120, spot=25_670.0),
        make_block("direction", as_of=later - 60),  # older than the batch's own
    ]

    def fresh() -> tuple[EventClock, DocumentState]:
        clock, state = EventClock(), DocumentState()
        for block in start:
            clock.observe(block.as_of)
            state.offer(block, clock.now_ms())
        return clock, state

    clock, one_by_one = fresh()
    verdicts = []
    for block in batch:
        clock.observe(block.as_of)
        verdicts.append(one_by_one.offer(block, clock.now_ms())[0])
    assert verdicts == ["new", "duplicate", "update", "duplicate", "new", "new", "older"]

    clock, batched = fresh()
    for block in batch:
        clock.observe(block.as_of)
    before = batched.sequence
    batch_verdicts, change = batched.offer_batch(batch, clock.now_ms())
    assert batch_verdicts == verdicts
    assert batched.sequence == before + 4 == one_by_one.sequence
    assert change is not None  # the winners, and the stale flips of the others
    assert set(change["blocks"]) == {"market", "direction", "seller", "buyer"}
    assert change["blocks"]["seller"]["stale"] is change["blocks"]["buyer"]["stale"] is True
    assert change["blocks"]["market"]["spot"] == 25_670.0
    assert orjson.dumps(batched.document()) == orjson.dumps(one_by_one.document())
    again = ["older"] * 3 + ["duplicate"] * 3 + ["older"]  # the batch read a second time
    assert batched.offer_batch(batch, clock.now_ms()) == (again, None)
