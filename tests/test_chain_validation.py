"""One chain validator on every path: a poisoned chain on the stream is refused with its
reason by every reader, never displaces a valid chain, and the seller goes on with the
valid ones; ingest dead-letters the same chain before it reaches the stream."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import redis

from services.ingest.main import IngestService
from services.seller.main import SellerWorker
from shared.bus import replies, streams
from shared.bus.engine import ChainCache
from shared.bus.publish import Bus
from shared.config import Settings
from shared.contract.codec import decode
from shared.contract.schemas import DeadLetter, FeatureSnapshot, OptionChain, OptionQuote
from shared.market.calendar import ist_date
from shared.market.chain_validation import chain_problems, describe
from shared.market.chain_view import ChainViews
from tests.engines_support import daily_snapshot
from tests.test_engines import running, wait_blocks
from tests.test_engines_chain import real_chains
from tests.test_ingest_service import StubSource


@pytest.fixture(scope="module")
def good() -> OptionChain:
    return real_chains(5)[-1]


def poisoned(chain: OptionChain, what: str) -> OptionChain:
    """``chain`` with one of the faults a fault campaign put on the stream."""
    quotes = list(chain.quotes)
    mid = len(quotes) // 2
    k = quotes[mid]
    changes: dict[str, dict[str, Any]] = {
        "expiry x": {"expiry": "x"},
        "expired": {"expiry": "2026-01-20"},
        "negative oi": {"quotes": (*quotes[:mid], k.model_copy(update={"pe_oi": -5.0}))},
        "huge oi": {"quotes": (*quotes[:mid], k.model_copy(update={"ce_oi": 1e300}))},
        "unsorted": {"quotes": (quotes[1], quotes[0], *quotes[2:])},
        "duplicated": {"quotes": (*quotes, quotes[-1])},
        "iv 9.9": {"quotes": (*quotes[:mid], k.model_copy(update={"ce_iv": 9.9}))},
        "crossed": {
            "quotes": (*quotes[:mid], k.model_copy(update={"ce_bid": 101.0, "ce_ask": 99.0}))
        },
        "no strikes": {"quotes": ()},
        "spot 0": {"spot": 0.0},
    }
    return chain.model_copy(update=changes[what])


@pytest.mark.parametrize(
    ("what", "reason"),
    [
        ("expiry x", "is not an ISO date"),
        ("expired", "had passed"),
        ("negative oi", "negative OI"),
        ("huge oi", "OI above"),
        ("unsorted", "out of order"),
        ("duplicated", "duplicate strike"),
        ("iv 9.9", "IV outside"),
        ("crossed", "crossed quotes"),
        ("no strikes", "no strikes"),
        ("spot 0", "spot 0.0 outside"),
    ],
)
def test_each_fault_is_refused_with_its_reason(good: OptionChain, what: str, reason: str) -> None:
    assert chain_problems(good) == []
    problems = chain_problems(poisoned(good, what))
    assert len(problems) == 1 and reason in problems[0], problems


def test_a_snapshot_ahead_of_the_clock_is_refused(good: OptionChain) -> None:
    assert chain_problems(good, now_s=good.snapshot_time) == []
    (problem,) = chain_problems(good, now_s=good.snapshot_time - 3600)
    assert "3600 s ahead of the clock" in problem


def test_a_real_strike_is_named_in_the_reason(good: OptionChain) -> None:
    k = good.quotes[len(good.quotes) // 2].strike
    (problem,) = chain_problems(poisoned(good, "huge oi"))
    assert f"{k:g}" in problem


def test_poisoned_chains_on_the_stream_never_displace_valid_ones(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """Every fault of the campaign goes on the stream between two valid snapshots: the cache
    keeps exactly the valid ones, counts each refusal, and the newer valid chain is used
    (an ``expiry: "x"`` chain sorted last and blocked every later snapshot before)."""
    bus = Bus(redis_client, settings)
    first, later = real_chains(20)[0], real_chains(20)[-1]
    assert first.expiry == later.expiry and later.snapshot_time > first.snapshot_time
    faults = ["expiry x", "negative oi", "huge oi", "unsorted", "duplicated", "iv 9.9"]
    bus.publish(first)
    for what in faults:
        bad = poisoned(first, what)
        bus.publish(bad.model_copy(update={"snapshot_time": first.snapshot_time + 1}))
    bus.publish(later)

    cache = ChainCache(redis_client)
    cache.refresh()
    assert cache.rejected == len(faults)
    assert list(cache.by_expiry) == [first.expiry]
    kept = [c.snapshot_time for _, c in cache.by_expiry[first.expiry]]
    assert kept == [first.snapshot_time, later.snapshot_time]

    snapshot: FeatureSnapshot = daily_snapshot("2025-06-27").model_copy(
        update={
            "as_of": later.snapshot_time + 30,
            "session_date": "2026-01-22",
            "next_expiry": later.expiry,
        }
    )
    bus.publish(snapshot)
    with running(SellerWorker, settings):
        (block,) = wait_blocks(redis_client, "seller", 1)
    chain = block.data["chain"]
    assert chain["status"] == "fresh" and chain["spot"] == later.spot
    assert chain["max_pain"]["strike"] is not None


def _taken_later(chain: OptionChain, days: int, seconds: int = 0) -> OptionChain:
    """``chain`` as if taken ``days`` later (its expiry two days after that)."""
    taken = chain.snapshot_time + days * 86_400 + seconds
    expiry = (ist_date(taken) + timedelta(days=2)).isoformat()
    return chain.model_copy(update={"snapshot_time": taken, "expiry": expiry})


def test_a_chain_from_far_ahead_is_refused_once_the_next_chain_is_older(
    redis_client: redis.Redis, settings: Settings
) -> None:
    """A valid-looking chain dated years ahead cannot carry the cache's clock there (where
    every real expiry would count as expired and be evicted): the next, older chain refutes
    it. A real gap in the snapshots (the next chain as late) keeps both."""
    bus = Bus(redis_client, settings)
    first, later = real_chains(20)[0], real_chains(20)[-1]
    far, gap, after_gap = (
        _taken_later(first, 1400),
        _taken_later(later, 7),
        _taken_later(later, 7, seconds=60),
    )
    cache = ChainCache(redis_client)
    for chain in (first, far):
        bus.publish(chain)
    cache.refresh()
    assert cache.held_back() == describe(far)  # said in the engines' health
    for chain in (later, gap, after_gap):
        bus.publish(chain)
    cache.refresh()
    assert cache.held_back() is None
    assert cache.rejected == 1
    assert cache.last_rejection is not None and far.expiry in cache.last_rejection
    assert "and the next chain is older" in cache.last_rejection
    held = {e: [c.snapshot_time for _, c in rows] for e, rows in cache.by_expiry.items()}
    assert held == {
        first.expiry: [first.snapshot_time, later.snapshot_time],
        gap.expiry: [gap.snapshot_time, after_gap.snapshot_time],
    }


def test_ingest_dead_letters_a_poisoned_chain_before_the_stream(
    settings: Settings, redis_client: redis.Redis, good: OptionChain
) -> None:
    bad = poisoned(good, "huge oi")
    IngestService(settings, StubSource([bad, good]), client=redis_client).run()
    on_stream = [decode(f) for _, f in replies.xrange(redis_client, streams.CHAINS)]
    assert [c.snapshot_time for c in on_stream if isinstance(c, OptionChain)] == [
        good.snapshot_time
    ]
    letters = [decode(f) for _, f in replies.xrange(redis_client, streams.DEAD_LETTER)]
    assert any(isinstance(d, DeadLetter) and "OI above" in d.reason for d in letters)


def test_a_quote_needs_a_finite_number() -> None:
    with pytest.raises(ValueError):
        OptionQuote(strike=float("nan"))


def test_a_chain_whose_spot_disagrees_with_the_bars_is_not_used(
    settings: Settings, redis_client: redis.Redis, good: OptionChain
) -> None:
    Bus(redis_client, settings).publish(good)
    views = ChainViews(ChainCache(redis_client), max_age_s=3600, spot_band=0.03)

    def at(spot: float) -> FeatureSnapshot:
        update = {
            "as_of": good.snapshot_time + 60,
            "session_date": "2026-01-22",
            "next_expiry": good.expiry,
            "spot": spot,
        }
        return daily_snapshot("2025-06-27").model_copy(update=update)

    views.cache.refresh()
    assert views.view(at(good.spot * 1.01)).chain == good
    view = views.view(at(good.spot * 1.10))
    assert view.chain is None and view.reason is not None
    assert "-9.1% from the bar stream" in view.reason and "AEGIS_CHAIN_SPOT_BAND" in view.reason
