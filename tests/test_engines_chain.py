"""Seller and buyer chain groups against a real Redis and the real intraday chain file: used
when a fresh chain of the target expiry exists, a fallback with its reason otherwise."""

from __future__ import annotations

import itertools

import redis

from services.buyer.main import BuyerWorker
from services.ingest.sources.chain_file import ChainFileSource
from services.seller.main import SellerWorker
from shared.bus.engine import ChainCache
from shared.bus.publish import Bus
from shared.config import Settings
from shared.contract.schemas import FeatureSnapshot, OptionChain
from shared.market.chain_view import years_to_expiry
from shared.signals.chain import atm_iv, percentile_rank, put_call_ratio, straddle_move
from shared.signals.max_pain import compute_max_pain
from tests.engines_support import daily_snapshot
from tests.test_chain_file import CHAIN_FILE
from tests.test_engines import running, wait_blocks


def real_chains(count: int) -> list[OptionChain]:
    events = ChainFileSource(CHAIN_FILE).events()
    return [e for e in itertools.islice(events, count) if isinstance(e, OptionChain)]


def test_chain_groups_fresh_stale_and_missing(
    settings: Settings, redis_client: redis.Redis
) -> None:
    bus = Bus(redis_client, settings)
    chains = real_chains(60)
    for chain in chains:
        bus.publish(chain)
    weekly = [c for c in chains if c.expiry == "2026-01-27"]
    picked, previous = weekly[-1], weekly[-2]
    base = daily_snapshot("2025-06-27")

    def at(epoch_s: int, expiry: str) -> FeatureSnapshot:
        update = {"as_of": epoch_s, "session_date": "2026-01-22", "next_expiry": expiry}
        return base.model_copy(update=update)

    snapshots = [
        at(picked.snapshot_time + 60, "2026-01-27"),  # fresh
        at(picked.snapshot_time + settings.chain_max_age_s + 61, "2026-01-27"),  # too old
        at(picked.snapshot_time + 60, "2026-01-29"),  # no chain of that expiry
    ]
    for snap in snapshots:
        bus.publish(snap)
    with running(SellerWorker, settings):
        fresh, stale, missing = wait_blocks(redis_client, "seller", 3)
    with running(BuyerWorker, settings, consumer="b1"):
        b_fresh, b_stale, b_missing = wait_blocks(redis_client, "buyer", 3)

    group = fresh.data["chain"]
    assert group["status"] == "fresh" and group["expiry"] == "2026-01-27"
    assert group["age_s"] == 60 and group["spot"] == picked.spot
    pcr = put_call_ratio(picked.quotes, picked.spot, near=0.02)
    assert group["pcr"]["oi"] == pcr.oi and group["pcr"]["volume"] == pcr.volume
    assert group["pcr"]["oi"] is not None and group["pcr"]["volume"] is not None
    call_wall = max((q for q in picked.quotes if q.strike > picked.spot), key=lambda q: q.ce_oi)
    assert group["walls"]["calls"][0]["strike"] == call_wall.strike
    before = {q.strike: q.ce_oi for q in previous.quotes}
    assert group["walls"]["calls"][0]["change_since_previous"] == (
        call_wall.ce_oi - before[call_wall.strike]
    )
    move = straddle_move(picked.quotes, picked.spot)
    assert move is not None and group["straddle"]["move_points"] == move.move_points
    band = group["straddle"]["band"]
    assert band["coverage"] == 0.9 and band["lower"] < picked.spot < band["upper"]
    assert group["smile"]["points"] and group["delta_skew"]["risk_reversal"] is not None
    assert group["atm_iv"]["value"] is not None
    earlier = [c for c in chains if c.snapshot_time <= picked.snapshot_time + 60 and c != picked]
    history = [iv for c in earlier if (iv := atm_iv(c.quotes, c.spot, years_to_expiry(c)))]
    assert group["atm_iv"]["history_snapshots"] == len(history) >= 50
    assert group["atm_iv"]["percentile"] == percentile_rank(history, group["atm_iv"]["value"])
    assert group["oi_by_strike"] and all("ce_change" in r for r in group["oi_by_strike"])
    pain = compute_max_pain(picked.quotes)
    assert pain is not None and group["max_pain"]["strike"] == pain.strike
    for key in ("pcr", "walls", "smile", "delta_skew", "straddle", "atm_iv", "max_pain"):
        assert group[key]["provenance"]["source"] == "data", key
        assert group[key]["provenance"]["formula"], key

    assert stale.data["chain"]["status"] == "unavailable"
    assert "s old" in stale.data["chain"]["reason"]
    assert missing.data["chain"]["status"] == "unavailable"
    assert "2026-01-29" in missing.data["chain"]["reason"]

    edge = b_fresh.data["theta_edge"]
    assert edge["implied_basis"] == "atm_straddle"
    assert edge["implied_move_points"] == move.one_sd_points
    assert b_fresh.data["chain"]["straddle_move_points"] == move.move_points
    for block in (b_stale, b_missing):
        assert block.data["theta_edge"]["implied_basis"] == "india_vix"
        assert block.data["theta_edge"]["implied_basis_reason"]
        assert block.data["chain"]["status"] == "unavailable"


def test_a_reingested_chain_is_held_once(redis_client: redis.Redis) -> None:
    cache = ChainCache(redis_client)
    first, second = real_chains(2)
    for chain in (first, second, first, second.model_copy(update={"source": "again"})):
        cache.add(chain)
    rows = cache.by_expiry[first.expiry]
    assert [t for t, _ in rows] == [first.snapshot_time, second.snapshot_time]
    assert rows[1][1].source == "again"
