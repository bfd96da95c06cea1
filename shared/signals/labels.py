"""Score -> label mappings and composite scores. Cut-offs are named here, once; every rate
that feeds them comes from a model or data."""

from __future__ import annotations

import math
from typing import Any, TypeVar

from shared.contract.document.buyer import BreakoutLabel, EnvironmentLabel, ThetaLabel
from shared.contract.document.direction import DirectionCall
from shared.contract.document.seller import SellerFlagLabel, StressLabel, TrapLabel
from shared.models.api import DailyFeatures

Label = TypeVar("Label", bound=str)
TRAP_CUTS: tuple[tuple[float, TrapLabel], ...] = (
    (0.35, "LOW"),
    (0.6, "ELEVATED"),
    (math.inf, "HIGH"),
)
STRESS_CUTS: tuple[tuple[float, StressLabel], ...] = (
    (0.4, "CALM"),
    (0.7, "CAUTION"),
    (math.inf, "STRESS"),
)
BREAKOUT_CUTS: tuple[tuple[float, BreakoutLabel], ...] = (
    (0.3, "LOW"),
    (0.6, "MODERATE"),
    (math.inf, "HIGH"),
)
THETA_CUTS: tuple[tuple[float, ThetaLabel], ...] = (
    (0.45, "don't waste premium"),
    (0.55, "neutral"),
    (math.inf, "edge justifies premium"),
)

STRESS_FORMULA = "0.5*P(MEDIUM) + 1.0*P(HIGH)"
THETA_EDGE_FORMULA = (
    "ratio = predicted_move / (implied_move*sqrt(2/pi)) (expected |move| under VIX), "
    "score = ratio/(1+ratio); < 0.45 don't waste premium, > 0.55 edge justifies premium"
)
RISK_WEIGHTS = {"iv_level": 0.3, "rv_level": 0.3, "drawdown": 0.2, "downside": 0.2}
RISK_FORMULA = (
    "100*(0.3*vix_pct_252 + 0.3*rv_pct_252 + 0.2*min(1, -dist_high_20/(2*sigma20*sqrt(20))) "
    "+ 0.2*P(DOWN, t5))"
)


def _cut(score: float, cuts: tuple[tuple[float, Label], ...]) -> Label:
    return next(label for limit, label in cuts if score < limit)


def trap_label(score: float) -> TrapLabel:
    return _cut(score, TRAP_CUTS)


def stress_score(probabilities: dict[str, float]) -> float:
    return 0.5 * probabilities["medium"] + 1.0 * probabilities["high"]


def stress_label(score: float) -> StressLabel:
    return _cut(score, STRESS_CUTS)


def breakout_label(score: float) -> BreakoutLabel:
    return _cut(score, BREAKOUT_CUTS)


def direction_call(probabilities: dict[str, float]) -> tuple[DirectionCall, float]:
    """(UP | DOWN | NEUTRAL, conviction = the predicted class's probability); an exact
    up/down tie is NEUTRAL."""
    up, neutral, down = probabilities["up"], probabilities["neutral"], probabilities["down"]
    if up > max(neutral, down):
        return "UP", up
    if down > max(neutral, up):
        return "DOWN", down
    return "NEUTRAL", max(up, neutral, down)


def theta_edge(
    predicted_move_points: float, implied_move_points: float
) -> tuple[float, ThetaLabel]:
    """(score in [0, 1], label); 0.5 = the predicted move matches what premium implies."""
    expected_implied = implied_move_points * math.sqrt(2 / math.pi)
    if expected_implied <= 0:
        return 0.5, "neutral"
    ratio = predicted_move_points / expected_implied
    score = ratio / (1 + ratio)
    return score, _cut(score, THETA_CUTS)


SELLER_FLAG_FORMULA = (
    "RISKY if trap HIGH or stress STRESS; FAVOURABLE if trap LOW, stress CALM and "
    "vix_pct_252 >= rv_pct_252; else NEUTRAL"
)


def seller_flag(
    trap: str, stress: str, iv_percentile: float | None, rv_percentile: float | None
) -> tuple[SellerFlagLabel, list[str]]:
    """FAVOURABLE | NEUTRAL | RISKY with the conditions that decided it."""
    reasons = [f"volatility trap {trap}", f"expiry stress {stress}"]
    rich = (
        iv_percentile is not None and rv_percentile is not None and iv_percentile >= rv_percentile
    )
    if iv_percentile is not None and rv_percentile is not None:
        reasons.append(
            f"implied vol percentile {iv_percentile:.2f} vs realized {rv_percentile:.2f}: "
            + ("premium rich" if rich else "premium cheap")
        )
    if trap == "HIGH" or stress == "STRESS":
        return "RISKY", reasons
    if trap == "LOW" and stress == "CALM" and rich:
        return "FAVOURABLE", reasons
    return "NEUTRAL", reasons


def environment(
    theta_label: str, breakout_score: float, vix_percentile: float | None
) -> tuple[EnvironmentLabel, str]:
    """(premium-friendly | cautious | avoid full risk, a sentence of context). Describes
    conditions only; it never tells anyone to trade."""
    vix_text = (
        f"India VIX sits at the {vix_percentile:.0%} percentile of the past 252 sessions"
        if vix_percentile is not None
        else "India VIX percentile unavailable"
    )
    text = (
        f"Predicted move to expiry vs premium: {theta_label}; breakout odds today "
        f"{breakout_score:.0%}; {vix_text}."
    )
    if theta_label == "edge justifies premium" and breakout_score >= BREAKOUT_CUTS[0][0]:
        return "premium-friendly", text
    if theta_label == "don't waste premium" and breakout_score < BREAKOUT_CUTS[0][0]:
        return "avoid full risk", text
    return "cautious", text


def risk_score(daily: DailyFeatures, p_down_t5: float) -> tuple[float, dict[str, Any]]:
    """0..100 market risk with its components (each 0..1) so the number can be explained."""
    sigma = daily.get("sigma20_daily")
    dist_high = daily.get("dist_high_20")
    drawdown = (
        min(1.0, max(0.0, -dist_high / (2 * sigma * math.sqrt(20))))
        if sigma and dist_high is not None
        else None
    )
    components = {
        "iv_level": daily.get("vix_pct_252"),
        "rv_level": daily.get("rv_pct_252"),
        "drawdown": drawdown,
        "downside": p_down_t5,
    }
    known = {k: v for k, v in components.items() if v is not None}
    weight = sum(RISK_WEIGHTS[k] for k in known)  # > 0: the downside component is always known
    value = 100 * sum(RISK_WEIGHTS[k] * v for k, v in known.items()) / weight
    return round(value, 2), {
        k: (round(v, 4) if v is not None else None) for k, v in components.items()
    }
