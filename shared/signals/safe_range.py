"""Safe range to expiry: S*exp(±z*sigma*sqrt(T/365)), sigma = VIX/100, separate z per side."""

from __future__ import annotations

import math
from functools import cache

from scipy.stats import norm

SAFE_RANGE_FORMULA = "S*exp(-z_lower*VIX/100*sqrt(T/365)) .. S*exp(+z_upper*VIX/100*sqrt(T/365))"
IMPLIED_MOVE_FORMULA = "S*VIX/100*sqrt(T/365)"


def implied_move_points(spot: float, vix: float, days: float) -> float:
    """One-standard-deviation move to expiry implied by India VIX, in index points."""
    return spot * vix / 100 * math.sqrt(days / 365)


def safe_range(
    spot: float, vix: float, days: float, z_lower: float, z_upper: float
) -> tuple[float, float]:
    """(lower, upper) bounds in index points for ``days`` calendar days to expiry."""
    scale = vix / 100 * math.sqrt(days / 365)
    return spot * math.exp(-z_lower * scale), spot * math.exp(z_upper * scale)


@cache  # one coverage target per deployment; scipy's ppf costs ~0.1 ms a call
def symmetric_normal_z(coverage: float) -> float:
    """The uncalibrated two-sided normal z for a coverage target (fallback only)."""
    return float(norm.ppf(0.5 + coverage / 2))
