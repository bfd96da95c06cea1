"""Term structure, 25-delta wings, synthetic forward and IV rank on NSE's UDiFF bhavcopy of
2026-01-22 (every listed expiry at the 15:30 close) and 2026-01-27 (a weekly's expiry day)."""

from __future__ import annotations

import statistics

import pytest
from vollib.black.greeks.analytical import delta as vollib_delta

from shared.market.chain_view import years_to_expiry
from shared.signals.chain import atm_iv, chain_smile
from shared.signals.term_structure import (
    basis,
    iv_percentile,
    iv_rank,
    synthetic_forward,
    term_structure,
)
from tests.test_signals_greeks import bhavcopy


def test_atm_iv_per_expiry_is_the_one_atm_iv_with_days_to_expiry() -> None:
    chains = bhavcopy("2026-01-22")
    curve = term_structure(list(reversed(chains)))  # any order in, nearest expiry first out
    assert [p.expiry for p in curve] == [c.expiry for c in chains]
    assert [p.days_to_expiry for p in curve[:4]] == [5.0, 12.0, 19.0, 26.0]
    for point, chain in zip(curve, chains, strict=True):
        assert point.atm_iv == atm_iv(chain.quotes, chain.spot, years_to_expiry(chain))
    near = curve[:5]
    assert all(p.atm_iv is not None and 0.05 < p.atm_iv < 0.3 for p in near)


def test_25_delta_risk_reversal_and_butterfly_by_hand() -> None:
    """The 25-delta strikes re-found here with vollib's Black-76 delta on the smile."""
    for chain in bhavcopy("2026-01-22")[:6]:
        years = years_to_expiry(chain)
        (point,) = term_structure([chain])
        smile = chain_smile(chain.quotes, chain.spot, years)
        assert smile is not None and point.atm_iv is not None
        f = smile.forward

        def call_delta(strike: float, iv: float, f: float = f, t: float = years) -> float:
            return float(vollib_delta("c", f, strike, t, 0.0, iv))

        puts = [p for p in smile.points if p.side == "put"]
        calls = [p for p in smile.points if p.side == "call"]
        put = min(puts, key=lambda p: abs(call_delta(p.strike, p.iv) - 1 + 0.25))
        call = min(calls, key=lambda p: abs(call_delta(p.strike, p.iv) - 0.25))
        assert (point.put_25d_strike, point.call_25d_strike) == (put.strike, call.strike)
        assert point.risk_reversal_25d == round(put.iv - call.iv, 6)
        assert point.butterfly_25d == round((put.iv + call.iv) / 2 - point.atm_iv, 6)
        assert put.strike < f < call.strike
        assert point.risk_reversal_25d > 0  # NIFTY's put skew, every expiry
        assert point.reason is None


def test_an_expired_chain_has_no_vols_and_says_why() -> None:
    expiring = bhavcopy("2026-01-27")[0]  # the 2026-01-27 weekly at its own 15:30 close
    (point, *_) = term_structure(list(bhavcopy("2026-01-27")[:2]))
    assert point.expiry == expiring.expiry and point.days_to_expiry == 0
    assert point.atm_iv is None and point.risk_reversal_25d is None
    assert point.reason == "expired: at or past the 15:30 close"


def test_synthetic_forward_by_hand_and_against_the_real_future() -> None:
    chain = bhavcopy("2026-01-22")[0]  # the 2026-01-27 weekly
    calls = {q.strike: q.ce_ltp for q in chain.quotes if q.ce_ltp}
    puts = {q.strike: q.pe_ltp for q in chain.quotes if q.pe_ltp}
    both = [k for k in calls if k in puts and abs(k / chain.spot - 1) <= 0.05]
    centre = min(both, key=lambda k: abs(calls[k] - puts[k]))
    nearest = sorted(sorted(both), key=lambda k: abs(k - centre))[:3]
    by_hand = statistics.median(k + calls[k] - puts[k] for k in nearest)
    forward = synthetic_forward(chain.quotes, chain.spot)
    assert forward is not None
    assert forward.forward == pytest.approx(by_hand, abs=1e-9)
    assert forward.strikes == tuple(sorted(nearest))
    assert forward.basis_points == round(by_hand - chain.spot, 2)
    assert forward.basis_pct == round(100 * (by_hand - chain.spot) / chain.spot, 4)
    # NSE's January future closed at 25,349.80 that day (the bhavcopy's IDF row): the
    # options' parity forward is within a few points of it
    assert abs(forward.forward - 25349.80) < 5
    future = basis(25349.80, chain.spot)
    assert (future.basis_points, future.basis_pct) == (59.9, round(5990 / 25289.9, 4))
    assert synthetic_forward((), chain.spot) is None


def test_iv_rank_and_percentile_by_hand() -> None:
    history = [0.10, 0.12, 0.14, 0.16, 0.20]
    assert iv_rank(history, 0.13) == 0.3  # (0.13 - 0.10) / (0.20 - 0.10)
    assert iv_rank(history, 0.25) == 1.0  # above the range: it is its own maximum
    assert iv_rank(history, 0.05) == 0.0
    assert iv_percentile(history, 0.13) == 0.4  # 2 of 5 at or below
    assert iv_percentile(history, 0.20) == 1.0
    assert iv_rank([], 0.13) is None and iv_percentile([], 0.13) is None
    assert iv_rank([0.13, 0.13], 0.13) is None  # no range to rank in
