"""Dealer gamma exposure and the zero-gamma level on real chains against a plain per-strike
loop written here, with vollib's Black-76 gamma (dealers long calls, short puts)."""

from __future__ import annotations

import math

import pytest
from vollib.black.greeks.analytical import gamma as vollib_gamma

from shared.contract.schemas import OptionChain
from shared.market.chain_view import years_to_expiry
from shared.signals.exposure import gamma_exposure, total_gex_at, zero_gamma_level
from shared.signals.greeks import ChainGreeks, chain_greeks
from tests.test_signals_greeks import bhavcopy, intraday


def valued(chain: OptionChain) -> ChainGreeks:
    return chain_greeks(chain.quotes, chain.spot, years_to_expiry(chain))


def loop_gex(chain: OptionChain, g: ChainGreeks, spot: float) -> tuple[float, float, float]:
    """(call GEX, put GEX, OI left out) summed strike by strike at a hypothetical ``spot``:
    forward F x spot/chain.spot, each strike's IV held."""
    forward = g.forward * spot / g.spot
    calls = puts = left_out = 0.0
    for q in chain.quotes:
        i = g.strikes.index(q.strike)
        for oi, iv, sign in ((q.ce_oi, g.call.iv[i], 1), (q.pe_oi, g.put.iv[i], -1)):
            if iv is None:
                left_out += oi
                continue
            gex = sign * vollib_gamma("c", forward, q.strike, g.years, 0.0, iv) * oi
            gex *= spot * spot * 0.01
            if sign > 0:
                calls += gex
            else:
                puts += gex
    return calls, puts, left_out


def test_gex_by_strike_and_total_equal_a_plain_loop_on_real_chains() -> None:
    chains = list(intraday()[:8]) + [c for c in bhavcopy("2026-01-22")[:4]]
    for chain in chains:
        g = valued(chain)
        gex = gamma_exposure(g, chain.quotes)
        for q in chain.quotes:
            i = gex.strikes.index(q.strike)
            for oi, iv, value, sign in (
                (q.ce_oi, g.call.iv[i], gex.call_gex_rupees_per_1pct[i], 1),
                (q.pe_oi, g.put.iv[i], gex.put_gex_rupees_per_1pct[i], -1),
            ):
                if iv is None:
                    assert value is None
                    continue
                gamma = vollib_gamma("p", g.forward, q.strike, g.years, 0.0, iv)
                expected = sign * gamma * oi * chain.spot**2 * 0.01
                assert value == pytest.approx(expected, rel=1e-9, abs=1e-6)
        calls, puts, left_out = loop_gex(chain, g, chain.spot)
        assert gex.total_gex_rupees_per_1pct == pytest.approx(calls + puts, rel=1e-9)
        assert gex.call_oi_without_gamma_units + gex.put_oi_without_gamma_units == left_out
        assert all(v is None or v >= 0 for v in gex.call_gex_rupees_per_1pct)
        assert all(v is None or v <= 0 for v in gex.put_gex_rupees_per_1pct)
        assert calls > 0 > puts


def test_gex_is_in_rupees_per_one_percent_move() -> None:
    """Units by hand: gamma x OI is the dealers' delta change (index units) per point; times
    spot x 0.01 points per 1% move; times spot rupees per index unit. (E.g. 1,000 units at a
    gamma of 0.001: 1 unit per point, 254 units per 1% of 25,400, worth Rs 6,451,600.)"""
    chain = intraday()[0]
    g = valued(chain)
    i = g.strikes.index(25400.0)
    gamma = g.call.gamma_per_point[i]
    oi = next(q.ce_oi for q in chain.quotes if q.strike == 25400)
    assert gamma is not None
    per_point = gamma * oi  # units of delta per index point
    expected = per_point * (chain.spot * 0.01) * chain.spot
    value = gamma_exposure(g, chain.quotes).call_gex_rupees_per_1pct[i]
    assert value == pytest.approx(expected, rel=1e-12)


def test_total_gex_on_a_grid_of_spots_equals_the_loop() -> None:
    chain = bhavcopy("2026-01-22")[1]
    g = valued(chain)
    spots = [chain.spot * (1 + x) for x in (-0.03, -0.01, 0.0, 0.02)]
    totals = total_gex_at([(g, chain.quotes)], spots)
    for spot, total in zip(spots, totals.tolist(), strict=True):
        calls, puts, _ = loop_gex(chain, g, spot)
        assert total == pytest.approx(calls + puts, rel=1e-9)


def test_zero_gamma_is_where_total_gex_changes_sign() -> None:
    """The three nearest expiries of 2026-01-22's close: total GEX over all of them."""
    chains = bhavcopy("2026-01-22")[:3]
    pairs = [(valued(c), c.quotes) for c in chains]
    zero = zero_gamma_level(pairs)
    assert zero.reason is None and zero.level is not None
    spot = chains[0].spot
    assert abs(zero.level / spot - 1) <= 0.05

    def loop_total(s: float) -> float:
        return sum(sum(loop_gex(c, g, s)[:2]) for c, (g, _) in zip(chains, pairs, strict=True))

    below, above = loop_total(zero.level - 5), loop_total(zero.level + 5)
    assert below * above < 0  # the sign flips across the level
    # and nowhere between the level and spot does it flip again (nearest crossing)
    steps = [zero.level + (spot - zero.level) * k / 20 for k in range(1, 21)]
    signs = {math.copysign(1, loop_total(s)) for s in steps}
    assert len(signs) == 1
    assert zero.total_gex_at_spot_rupees_per_1pct == pytest.approx(loop_total(spot), rel=1e-9)


def test_no_crossing_gives_none_with_a_reason() -> None:
    chain = intraday()[0]
    calls_only = tuple(q.model_copy(update={"pe_oi": 0.0}) for q in chain.quotes)
    g = chain_greeks(calls_only, chain.spot, years_to_expiry(chain))
    zero = zero_gamma_level([(g, calls_only)], range_pct=0.03)
    assert zero.level is None and zero.total_gex_at_spot_rupees_per_1pct > 0
    assert zero.reason is not None
    assert zero.reason.startswith("total GEX stays positive for spot within ±3%")
    expired = bhavcopy("2026-01-27")[0]
    g0 = chain_greeks(expired.quotes, expired.spot, 0.0)
    zero0 = zero_gamma_level([(g0, expired.quotes)])
    assert zero0.level is None and zero0.reason == "no open interest with a gamma (no IVs)"
