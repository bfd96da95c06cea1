"""The market block: spot, VIX and the market regime, straight from the data."""
from __future__ import annotations

from collections import deque
from typing import Any

from shared.blocks import provenance
from shared.schemas import FeatureSnapshot

SPARKLINE_POINTS = 60
REGIME_FORMULA = (
    "HIGH_VOLATILITY if vix_pct_252 >= 0.8 or rv_20 >= 0.25; "
    "TRENDING_UP/DOWN if trend_strength_20 >= 0.3 and sign(ret_20) == sign(sma_ratio_50); "
    "else RANGE_BOUND"
)


def market_regime(daily: dict[str, float | None]) -> str:
    vix_pct, rv20 = daily.get("vix_pct_252"), daily.get("rv_20")
    if (vix_pct is not None and vix_pct >= 0.8) or (rv20 is not None and rv20 >= 0.25):
        return "HIGH_VOLATILITY"
    trend, ret20, sma50 = (daily.get(k) for k in ("trend_strength_20", "ret_20", "sma_ratio_50"))
    if trend is not None and ret20 is not None and sma50 is not None and trend >= 0.3:
        if ret20 > 0 and sma50 > 0:
            return "TRENDING_UP"
        if ret20 < 0 and sma50 < 0:
            return "TRENDING_DOWN"
    return "RANGE_BOUND"


def market_data(snapshot: FeatureSnapshot, sparkline: list[tuple[int, float]]) -> dict[str, Any]:
    """The market section for one snapshot; ``sparkline`` holds the recent closes up to it."""
    change = snapshot.spot - snapshot.prev_close if snapshot.prev_close else None
    vix_change = (
        snapshot.vix - snapshot.vix_prev_close
        if snapshot.vix is not None and snapshot.vix_prev_close is not None else None
    )
    window = f"{snapshot.daily_as_of} close" if snapshot.kind == "daily" else snapshot.session_date
    data: dict[str, Any] = {
        "spot": snapshot.spot,
        "prev_close": snapshot.prev_close,
        "spot_change": round(change, 2) if change is not None else None,
        "spot_change_pct": round(change / snapshot.prev_close * 100, 3) if change is not None
        and snapshot.prev_close else None,
        "vix": snapshot.vix,
        "vix_change": round(vix_change, 4) if vix_change is not None else None,
        "vix_as_of": snapshot.vix_as_of,
        "next_expiry": snapshot.next_expiry,
        "days_to_expiry": snapshot.days_to_expiry,
        "sparkline": [list(p) for p in sparkline],
        "provenance": provenance(source="data", window=window,
                                 note="NIFTY 50 and India VIX bars as published"),
        "regime": {
            "label": market_regime(snapshot.daily),
            "provenance": provenance(source="formula", formula=REGIME_FORMULA,
                                     window=f"daily features as of {snapshot.daily_as_of}"),
        },
    }
    if snapshot.intraday:
        for name in ("session_open", "session_high", "session_low"):
            data[name] = snapshot.intraday.get(name)
    return data


def new_sparkline() -> deque[tuple[int, float]]:
    return deque(maxlen=SPARKLINE_POINTS)
