"""The chain's depth in the seller block, through the real bus and worker, on a real NSE
bhavcopy day (every listed expiry): Greeks, GEX, build-up, term structure and the forward
equal the pure functions' own results, contain no NaN, and the block meets the contract."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path
from typing import Any

import msgspec
import pytest
import redis

from services.gateway.contract_check import contract_checked
from services.ingest.sources.chain_file import ChainFileSource
from services.seller.main import SellerWorker
from shared.bus.publish import Bus
from shared.config import Settings
from shared.contract.schemas import OptionChain, OptionQuote, SignalBlock
from shared.market.calendar import daily_close_time
from shared.market.chain_view import TERM_MAX_DAYS, years_to_expiry
from shared.signals.exposure import gamma_exposure, zero_gamma_level
from shared.signals.greeks import chain_greeks
from shared.signals.term_structure import synthetic_forward
from tests.engines_support import daily_snapshot
from tests.test_engines import running, wait_blocks

BHAVCOPY = Path(__file__).parent / "fixtures" / "nse" / "nifty_fo_udiff_2026-01-22.csv.gz"
DAY = "2026-01-22"


@pytest.fixture(scope="module")
def expiries() -> list[OptionChain]:
    return [e for e in ChainFileSource(BHAVCOPY).events() if isinstance(e, OptionChain)]


def earlier(chain: OptionChain, seconds: int) -> OptionChain:
    """The same chain ``seconds`` before, with every OI 10 % lower and every price one point
    lower: against it, every priced strike is a long build-up."""

    def before(q: OptionQuote) -> OptionQuote:
        return q.model_copy(
            update={
                "ce_oi": q.ce_oi * 0.9,
                "pe_oi": q.pe_oi * 0.9,
                "ce_ltp": None if q.ce_ltp is None or q.ce_ltp <= 1 else q.ce_ltp - 1,
                "pe_ltp": None if q.pe_ltp is None or q.pe_ltp <= 1 else q.pe_ltp - 1,
            }
        )

    update = {
        "snapshot_time": chain.snapshot_time - seconds,
        "quotes": tuple(before(q) for q in chain.quotes),
    }
    return chain.model_copy(update=update)


def no_nan(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(no_nan(v) for v in value.values())
    if isinstance(value, list):
        return all(no_nan(v) for v in value)
    return True


def test_depth_groups_in_the_seller_block(
    settings: Settings, redis_client: redis.Redis, expiries: list[OptionChain]
) -> None:
    near = expiries[0]
    assert near.expiry == "2026-01-27" and len(expiries) == 18
    bus = Bus(redis_client, settings)
    bus.publish(earlier(near, 86_400))  # the previous session's close
    bus.publish(earlier(near, 300))  # the snapshot before
    for chain in expiries:
        bus.publish(chain)
    as_of = daily_close_time(date.fromisoformat(DAY))
    snapshot = daily_snapshot("2025-06-27").model_copy(
        update={"as_of": as_of, "session_date": DAY, "next_expiry": near.expiry, "spot": near.spot}
    )
    bus.publish(snapshot)
    with running(SellerWorker, settings):
        (block,) = wait_blocks(redis_client, "seller", 1)
    chain = block.data["chain"]
    assert chain["status"] == "fresh" and chain["expiry"] == near.expiry
    assert no_nan(block.data)
    shown = contract_checked(block, msgspec.msgpack.encode(block.data), settings.block_max_bytes)
    assert isinstance(shown, SignalBlock) and shown.data == block.data

    g = chain_greeks(near.quotes, near.spot, years_to_expiry(near))
    band = [k for k in g.strikes if abs(k / near.spot - 1) <= 0.05]
    rows = chain["greeks"]["strikes"]
    assert [r["strike"] for r in rows] == band
    by_strike = dict(zip(g.strikes, g.call.gamma_per_point, strict=True))
    assert all(r["gamma_per_point"] == by_strike[r["strike"]] for r in rows)
    assert sum(r["gamma_per_point"] is not None for r in rows) >= len(rows) - 2

    gex = chain["gamma_exposure"]
    reference = gamma_exposure(g, near.quotes)
    assert gex["total_rupees_per_1pct"] == round(reference.total_gex_rupees_per_1pct, 0)
    zero = zero_gamma_level([(g, near.quotes)])
    assert gex["zero_gamma_level"] == (None if zero.level is None else round(zero.level, 2))
    assert gex["regime"] in ("positive", "negative")

    since = chain["buildup"]["since_previous"]
    labels = {r["call"] for r in since["by_strike"] if r["call"]} | {
        r["put"] for r in since["by_strike"] if r["put"]
    }
    assert labels == {"long_buildup"}
    assert chain["buildup"]["since_close"]["since"].startswith("2026-01-21T15:30")

    term = chain["term_structure"]["expiries"]
    listed = [c.expiry for c in expiries if c.expiry <= "2026-04-27"]  # TERM_MAX_DAYS
    assert TERM_MAX_DAYS == 95 and [p["expiry"] for p in term] == listed
    assert term[0]["atm_iv"] == chain["atm_iv"]["value"]  # one ATM IV on every tile

    forward = synthetic_forward(near.quotes, near.spot)
    assert forward is not None and chain["forward"]["forward"] == round(forward.forward, 2)
    assert chain["forward"]["basis_points"] == forward.basis_points
