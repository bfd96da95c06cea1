"""Breach curve: strikes 0.5% .. 3% either side of spot on the 50-point NIFTY strike grid."""

from __future__ import annotations

import math
from dataclasses import dataclass

STRIKE_STEP_POINTS = 50.0
DISTANCES_PCT: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0)
LOGNORMAL_BREACH_FORMULA = "P = 1 - Phi(|ln(K/S)| / (VIX/100*sqrt(T/365)))  (driftless lognormal)"


@dataclass(frozen=True)
class BreachStrike:
    strike: float
    side: str  # "above" | "below"
    distance_points: float
    distance_pct: float


def breach_strikes(
    spot: float, distances_pct: tuple[float, ...] = DISTANCES_PCT, step: float = STRIKE_STEP_POINTS
) -> list[BreachStrike]:
    """Strikes nearest to spot*(1 ± d%) for each distance, below first then above, no repeats."""
    out: list[BreachStrike] = []
    seen: set[float] = set()
    for sign, side in ((-1, "below"), (1, "above")):
        for pct in distances_pct:
            strike = round(spot * (1 + sign * pct / 100) / step) * step
            if strike in seen or (strike - spot) * sign <= 0:
                continue
            seen.add(strike)
            out.append(
                BreachStrike(
                    strike=float(strike),
                    side=side,
                    distance_points=round(abs(strike - spot), 2),
                    distance_pct=round(abs(strike / spot - 1) * 100, 3),
                )
            )
    return out


def lognormal_breach_probability(spot: float, strike: float, vix: float, days: float) -> float:
    """P(expiry close beyond strike) under a driftless lognormal with sigma = VIX/100."""
    scale = vix / 100 * math.sqrt(days / 365)
    if scale <= 0:
        return 0.0
    # 1 - Phi(x) = erfc(x / sqrt 2) / 2: the same value as scipy's norm.sf, ~50x cheaper
    return 0.5 * math.erfc(abs(math.log(strike / spot)) / scale / math.sqrt(2))
