"""Regime labels from daily features (classification cut-offs, documented in the formulas)."""

from __future__ import annotations

from shared.contract.document.buyer import BuyerRegimeName
from shared.contract.document.market import MarketRegime
from shared.models.api import DailyFeatures

EFFICIENCY_TREND = 1 / 3  # |20d return| / sum |daily returns| at or above this = trending
HIGH_VOL_PERCENTILE = 0.8  # India VIX at or above its 80th 252-session percentile

MARKET_REGIME_FORMULA = (
    "HIGH_VOLATILITY if vix_pct_252 >= 0.8; else TRENDING_UP/DOWN if trend_strength_20 >= 1/3 "
    "and sign(ret_20) = sign(sma_ratio_50); else RANGE_BOUND"
)
BUYER_REGIME_FORMULA = (
    "TREND_FOLLOWING if trend_strength_20 >= 1/3; MEAN_REVERTING if price is outside the "
    "20-day Bollinger bands (bollinger_b_20 < 0 or > 1) without trend; else CHOPPY"
)


def market_regime(daily: DailyFeatures) -> MarketRegime | None:
    """TRENDING_UP | TRENDING_DOWN | RANGE_BOUND | HIGH_VOLATILITY, None without enough history."""
    vix_pct, eff = daily.get("vix_pct_252"), daily.get("trend_strength_20")
    ret_20, sma_50 = daily.get("ret_20"), daily.get("sma_ratio_50")
    if vix_pct is None or eff is None or ret_20 is None or sma_50 is None:
        return None
    if vix_pct >= HIGH_VOL_PERCENTILE:
        return "HIGH_VOLATILITY"
    if eff >= EFFICIENCY_TREND and ret_20 > 0 and sma_50 > 0:
        return "TRENDING_UP"
    if eff >= EFFICIENCY_TREND and ret_20 < 0 and sma_50 < 0:
        return "TRENDING_DOWN"
    return "RANGE_BOUND"


def buyer_regime(daily: DailyFeatures) -> BuyerRegimeName | None:
    """TREND_FOLLOWING | MEAN_REVERTING | CHOPPY, None without enough history."""
    eff, band = daily.get("trend_strength_20"), daily.get("bollinger_b_20")
    if eff is None or band is None:
        return None
    if eff >= EFFICIENCY_TREND:
        return "TREND_FOLLOWING"
    if band < 0 or band > 1:
        return "MEAN_REVERTING"
    return "CHOPPY"
