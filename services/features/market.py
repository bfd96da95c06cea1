"""The market block: spot, VIX and the market regime, straight from the data."""

from __future__ import annotations

from collections import deque

from shared.contract.document.base import UNSET
from shared.contract.document.market import MarketData, MarketRegimeLabel, SparkPoint
from shared.contract.schemas import FeatureSnapshot
from shared.signals import provenance, regimes

SPARKLINE_POINTS = 60


def market_data(snapshot: FeatureSnapshot, sparkline: list[tuple[int, float]]) -> MarketData:
    """The market section for one snapshot; ``sparkline`` holds the recent closes up to it."""
    change = snapshot.spot - snapshot.prev_close if snapshot.prev_close else None
    vix_change = (
        snapshot.vix - snapshot.vix_prev_close
        if snapshot.vix is not None and snapshot.vix_prev_close is not None
        else None
    )
    window = f"{snapshot.daily_as_of} close" if snapshot.kind == "daily" else snapshot.session_date
    intraday = snapshot.intraday
    return MarketData(
        spot=snapshot.spot,
        prev_close=snapshot.prev_close,
        spot_change=round(change, 2) if change is not None else None,
        spot_change_pct=round(change / snapshot.prev_close * 100, 3)
        if change is not None and snapshot.prev_close
        else None,
        vix=snapshot.vix,
        vix_change=round(vix_change, 4) if vix_change is not None else None,
        vix_as_of=snapshot.vix_as_of,
        next_expiry=snapshot.next_expiry,
        days_to_expiry=snapshot.days_to_expiry,
        sparkline=[SparkPoint(open_time, close) for open_time, close in sparkline],
        provenance=provenance.from_data(
            window=window, note="NIFTY 50 and India VIX bars as published"
        ),
        regime=MarketRegimeLabel(
            label=regimes.market_regime(snapshot.daily),
            provenance=provenance.from_formula(
                regimes.MARKET_REGIME_FORMULA, window=f"daily features as of {snapshot.daily_as_of}"
            ),
        ),
        session_open=intraday.get("session_open") if intraday else UNSET,
        session_high=intraday.get("session_high") if intraday else UNSET,
        session_low=intraday.get("session_low") if intraday else UNSET,
    )


def new_sparkline() -> deque[tuple[int, float]]:
    return deque(maxlen=SPARKLINE_POINTS)
