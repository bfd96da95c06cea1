"""Max pain against an independent brute force on real option-chain snapshots."""

from __future__ import annotations

import pandas as pd
import pytest

from shared.contract.schemas import OptionQuote
from shared.signals.max_pain import compute_max_pain
from tests.engines_support import chain_frame


def brute_force(rows: pd.DataFrame) -> float:
    """Plain loops: for every candidate settlement strike, sum every writer's payout."""
    best_strike, best_pay = None, None
    records = list(rows[["strike", "ce_oi", "pe_oi"]].itertuples(index=False))
    for settle, _, _ in records:
        pay = 0.0
        for strike, ce_oi, pe_oi in records:
            if settle > strike:
                pay += (settle - strike) * ce_oi
            if strike > settle:
                pay += (strike - settle) * pe_oi
        if best_pay is None or pay < best_pay:
            best_strike, best_pay = settle, pay
    assert best_strike is not None
    return float(best_strike)


def snapshots(count: int) -> list[pd.DataFrame]:
    groups = [g for _, g in chain_frame().groupby(["snapshot_ts", "expiry"], sort=True)]
    step = max(1, len(groups) // count)
    return groups[::step][:count]


@pytest.mark.parametrize(
    "rows", snapshots(8), ids=lambda g: f"{g.snapshot_ts.iloc[0]}/{g.expiry.iloc[0]}"
)
def test_max_pain_matches_brute_force(rows: pd.DataFrame) -> None:
    quotes = [
        OptionQuote(strike=r.strike, ce_ltp=r.ce_ltp, ce_oi=r.ce_oi, pe_ltp=r.pe_ltp, pe_oi=r.pe_oi)
        for r in rows.itertuples()
    ]
    result = compute_max_pain(quotes)
    assert result is not None
    assert result.strike == brute_force(rows)
    assert result.lower <= result.strike <= result.upper


def test_max_pain_moves_across_snapshots() -> None:
    strikes = set()
    for rows in snapshots(8):
        quotes = [
            OptionQuote(strike=r.strike, ce_oi=r.ce_oi, pe_oi=r.pe_oi) for r in rows.itertuples()
        ]
        pain = compute_max_pain(quotes)
        assert pain is not None
        strikes.add(pain.strike)
    assert len(strikes) > 1


def test_no_open_interest_is_none() -> None:
    assert compute_max_pain([OptionQuote(strike=25000.0)]) is None
    assert compute_max_pain([]) is None
