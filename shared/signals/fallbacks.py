"""Heuristic stand-ins used only when a model is unavailable. Each is a stated formula over
the snapshot's own features (so it moves with the market), and every value made from one is
published with ``source: heuristic`` and a note naming the missing model."""

from __future__ import annotations

import math

from scipy.stats import norm

from shared.market.calendar import TRADING_DAYS_PER_YEAR
from shared.models.api import DailyFeatures
from shared.models.labels import NEUTRAL_BAND_SIGMA

RANDOM_WALK_FORMULA = (
    "r ~ N(mu*h, sigma20^2*h), mu = ret_20/20; UP if r > 0.25*sigma20*sqrt(h), DOWN if < -that"
)
TRAP_FORMULA = "clip(0.5 + (rv_pct_252 - vix_pct_252)/2, 0, 1)"
STRESS_FORMULA = "q = rv_pct_252: low = (1-q)^2, high = q^2, medium = 1 - low - high"
BREAKOUT_FORMULA = (
    "Brownian first passage: 2*(1-Phi(d/sigma)) per side, d = distance to prior high/low "
    "+ 0.25*ATR14, sigma = sigma20 * sqrt(session fraction left)"
)
MOVE_FORMULA = "E|r| = sqrt(2/pi) * sigma20 * sqrt(sessions_to_expiry)"


def daily_sigma(daily: DailyFeatures) -> float:
    """Daily log-return sd: sigma20, else India VIX / 100 / sqrt(252)."""
    if daily.get("sigma20_daily"):
        return float(daily["sigma20_daily"])  # type: ignore[arg-type]
    if daily.get("vix"):
        return float(daily["vix"]) / 100 / math.sqrt(TRADING_DAYS_PER_YEAR)  # type: ignore[arg-type]
    raise ValueError("snapshot has neither sigma20_daily nor vix")


def random_walk_direction(daily: DailyFeatures, sessions: float) -> dict[str, float]:
    """{"up", "neutral", "down", "expected_return"} over ``sessions`` trading sessions."""
    sigma = daily_sigma(daily)
    drift = (daily.get("ret_20") or 0.0) / 20
    mean, sd = drift * sessions, sigma * math.sqrt(sessions)
    band = NEUTRAL_BAND_SIGMA * sd
    up = float(norm.sf((band - mean) / sd))
    down = float(norm.cdf((-band - mean) / sd))
    return {"up": up, "neutral": 1 - up - down, "down": down, "expected_return": mean}


def trap_score(daily: DailyFeatures) -> float | None:
    rv, iv = daily.get("rv_pct_252"), daily.get("vix_pct_252")
    if rv is None or iv is None:
        return None
    return min(1.0, max(0.0, 0.5 + (rv - iv) / 2))


def stress_probabilities(daily: DailyFeatures) -> dict[str, float] | None:
    q = daily.get("rv_pct_252")
    if q is None:
        return None
    low, high = (1 - q) ** 2, q**2
    return {"low": low, "medium": 1 - low - high, "high": high}


def breakout_probability(
    last: float, upper: float, lower: float, sigma: float, session_left: float
) -> float:
    """P(the session reaches ``upper`` or ``lower`` from ``last``) for a driftless walk."""
    sd = sigma * math.sqrt(max(session_left, 1e-9))
    p_up = 2 * norm.sf(max(math.log(upper / last), 0.0) / sd)
    p_down = 2 * norm.sf(max(math.log(last / lower), 0.0) / sd)
    return float(min(1.0, p_up + p_down))


def predicted_abs_move(daily: DailyFeatures, sessions: float) -> float:
    """Expected absolute log move over ``sessions`` under recent realized volatility."""
    return math.sqrt(2 / math.pi) * daily_sigma(daily) * math.sqrt(max(sessions, 1e-9))
