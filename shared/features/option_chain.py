"""The option chain as model inputs and as a baseline, with one definition for the live chain
and for the daily history (``data/nifty_chain_features_daily_2023-08_2026-02.csv``).

``summarise`` computes from one expiry's quotes exactly what the history's columns hold
(tests/test_chain_inputs.py reproduces them from NSE's bhavcopy); ``from_history`` reads a
history row into the same record, so a model fitted on the history sees the same numbers live.

The straddle baseline: an ATM straddle is worth about E|S_T - S| = sqrt(2/pi)·sigma·sqrt(T)·S
under a driftless lognormal, so ``straddle_pct``/100 is the market's priced mean absolute move
to that expiry and ``straddle_pct``/100·sqrt(pi/2) the one-sigma log move.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from shared.contract.schemas import OptionQuote
from shared.signals.chain_arrays import as_arrays

SUMMARY_FORMULA = (
    "one expiry: pcr_oi = sum put OI / sum call OI; straddle_pct = (call + put price at the "
    "strike nearest spot) / spot x 100; wall distances = |strike of max OI - spot| / spot x 100"
)
SIGMA_PER_MEAN_ABS = math.sqrt(math.pi / 2)  # one-sigma log move per mean absolute move


@dataclass(frozen=True)
class ChainSummary:
    """One expiry's chain on one day, in the history's units (percent of spot)."""

    days_to_expiry: int  # calendar days; 0 on the expiry day
    pcr_oi: float | None
    straddle_pct: float | None
    put_wall_dist_pct: float | None
    call_wall_dist_pct: float | None


def summarise(quotes: Sequence[OptionQuote], spot: float, days_to_expiry: int) -> ChainSummary:
    """``ChainSummary`` of one expiry's quotes (prices as published: LTP live, the close in a
    bhavcopy). A value whose inputs are missing is None."""
    if not quotes or not spot > 0:
        return ChainSummary(days_to_expiry, None, None, None, None)
    a = as_arrays(quotes)
    call_oi, put_oi = float(np.sum(a.ce_oi)), float(np.sum(a.pe_oi))
    i = int(np.argmin(np.abs(a.strike - spot)))
    straddle = float(a.ce_ltp[i] + a.pe_ltp[i])

    def wall(oi: np.ndarray) -> float | None:
        return (
            abs(float(a.strike[int(np.argmax(oi))]) - spot) / spot * 100 if oi.max() > 0 else None
        )

    return ChainSummary(
        days_to_expiry=days_to_expiry,
        pcr_oi=put_oi / call_oi if call_oi > 0 else None,
        straddle_pct=straddle / spot * 100 if math.isfinite(straddle) and straddle > 0 else None,
        put_wall_dist_pct=wall(a.pe_oi),
        call_wall_dist_pct=wall(a.ce_oi),
    )


def _finite(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def from_history(row: Mapping[str, object]) -> ChainSummary:
    """A row of the daily chain history (its ``oc_*`` columns) as a ``ChainSummary``."""
    return ChainSummary(
        days_to_expiry=int(float(row["oc_dte_actual"])),  # type: ignore[arg-type]
        pcr_oi=_finite(row.get("oc_pcr_oi")),
        straddle_pct=_finite(row.get("oc_straddle_pct")),
        put_wall_dist_pct=_finite(row.get("oc_put_wall_dist_pct")),
        call_wall_dist_pct=_finite(row.get("oc_call_wall_dist_pct")),
    )


def straddle_sigma(summary: ChainSummary) -> float | None:
    """The straddle's one-sigma log move to its expiry (None on the expiry day or unpriced)."""
    if summary.straddle_pct is None or summary.days_to_expiry < 1:
        return None
    return summary.straddle_pct / 100 * SIGMA_PER_MEAN_ABS


def straddle_iv(summary: ChainSummary) -> float | None:
    """The annualised volatility the straddle prices (calendar-day time, as India VIX)."""
    sigma = straddle_sigma(summary)
    return None if sigma is None else sigma / math.sqrt(summary.days_to_expiry / 365)


def model_inputs(summary: ChainSummary, vix: float, forecast_vol: float) -> dict[str, float]:
    """The chain's inputs for a volatility model: the straddle's implied vol against India VIX
    (the weekly against the 30-day term: ``term_gap``) and against a realised-vol forecast (an
    option-implied variance risk premium: ``vrp``), log PCR and the wall distances. Keys whose
    inputs are missing are left out."""
    iv = straddle_iv(summary)
    out: dict[str, float] = {}
    if iv is not None and vix > 0:
        out["term_gap"] = math.log(iv / (vix / 100))
    if iv is not None and forecast_vol > 0:
        out["vrp"] = math.log(iv / forecast_vol)
    if summary.pcr_oi is not None and summary.pcr_oi > 0:
        out["log_pcr"] = math.log(summary.pcr_oi)
    for name in ("put_wall_dist_pct", "call_wall_dist_pct"):
        value = getattr(summary, name)
        if value is not None:
            out[name] = value
    return out


def straddle_breach_probability(spot: float, strike: float, summary: ChainSummary) -> float | None:
    """P(expiry close beyond ``strike``) under a driftless lognormal scaled by the straddle."""
    sigma = straddle_sigma(summary)
    if sigma is None:
        return None
    return 0.5 * math.erfc(abs(math.log(strike / spot)) / sigma / math.sqrt(2))
