"""The chain's model inputs have one definition: from NSE's bhavcopy (the history's source) it
reproduces the shipped daily chain history exactly, and from a live NSE response it equals an
independent per-strike calculation on the raw JSON."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from services.ingest.sources.chain_file import ChainFileSource
from services.ingest.sources.nse_chain import parse_chain
from shared.contract.schemas import OptionChain
from shared.features import option_chain
from tests.fixtures.nse import recorded

ROOT = Path(__file__).resolve().parents[1]
HISTORY = ROOT / "data" / "nifty_chain_features_daily_2023-08_2026-02.csv"
BHAVCOPY = ROOT / "tests" / "fixtures" / "nse" / "nifty_fo_udiff_{day}.csv.gz"
FIELDS = ("pcr_oi", "straddle_pct", "put_wall_dist_pct", "call_wall_dist_pct")


@pytest.mark.parametrize("day", ["2026-01-22", "2026-01-23", "2026-01-27"])
def test_the_bhavcopy_reproduces_the_daily_history(day: str) -> None:
    chains = [e for e in ChainFileSource(Path(str(BHAVCOPY).format(day=day))).events()]
    nearest = min((c for c in chains if isinstance(c, OptionChain)), key=lambda c: c.expiry)
    days = (date.fromisoformat(nearest.expiry) - date.fromisoformat(day)).days
    ours = option_chain.summarise(nearest.quotes, nearest.spot, days)
    row = pd.read_csv(HISTORY, index_col="date").loc[day]
    theirs = option_chain.from_history(row.to_dict())
    assert ours.days_to_expiry == theirs.days_to_expiry == int(row["oc_dte_actual"])
    for name in FIELDS:
        assert getattr(ours, name) == pytest.approx(getattr(theirs, name), abs=2e-6), name


def test_a_live_response_gives_the_per_strike_calculation() -> None:
    expiry = "31-Mar-2022"
    chain = parse_chain(recorded.chain_v3(expiry), date(2022, 3, 31), "nse")
    ours = option_chain.summarise(chain.quotes, chain.spot, 3)
    rows = pd.DataFrame(
        {
            "strike": r["strikePrice"],
            "ce_oi": r.get("CE", {}).get("openInterest", 0),
            "pe_oi": r.get("PE", {}).get("openInterest", 0),
            "ce": r.get("CE", {}).get("lastPrice", math.nan),
            "pe": r.get("PE", {}).get("lastPrice", math.nan),
        }
        for r in recorded.rows_of(expiry)
    ).set_index("strike")
    spot = recorded.SPOT
    atm = (rows.index.to_series() - spot).abs().idxmin()
    assert ours.pcr_oi == pytest.approx(rows.pe_oi.sum() / rows.ce_oi.sum(), rel=1e-12)
    assert ours.straddle_pct == pytest.approx((rows.ce[atm] + rows.pe[atm]) / spot * 100)
    assert ours.put_wall_dist_pct == pytest.approx(abs(rows.pe_oi.idxmax() - spot) / spot * 100)
    assert ours.call_wall_dist_pct == pytest.approx(abs(rows.ce_oi.idxmax() - spot) / spot * 100)


def test_the_straddle_baseline_is_a_lognormal_at_the_straddles_scale() -> None:
    summary = option_chain.ChainSummary(7, 1.0, 1.2, 1.0, 2.0)
    sigma = 0.012 * math.sqrt(math.pi / 2)
    assert option_chain.straddle_sigma(summary) == pytest.approx(sigma)
    assert option_chain.straddle_iv(summary) == pytest.approx(sigma / math.sqrt(7 / 365))
    # one sigma out, the tail beyond it is 15.87 %; at the spot itself, one half
    strike = 25_000 * math.exp(sigma)
    p = option_chain.straddle_breach_probability(25_000, strike, summary)
    assert p == pytest.approx(0.158655, abs=1e-6)
    assert option_chain.straddle_breach_probability(25_000, 25_000, summary) == 0.5
    inputs = option_chain.model_inputs(summary, vix=12.0, forecast_vol=0.10)
    assert inputs["term_gap"] == pytest.approx(math.log(sigma / math.sqrt(7 / 365) / 0.12))
    expiry_day = option_chain.ChainSummary(0, 1.0, 0.1, 0.1, 0.1)
    assert option_chain.straddle_sigma(expiry_day) is None
    assert "term_gap" not in option_chain.model_inputs(expiry_day, 12.0, 0.1)
