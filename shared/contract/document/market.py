"""The market section (the features worker): spot, India VIX, the expiry and the trend
regime, straight from the bars (services/features/market.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, Strict

from shared.contract.document.base import (
    CalendarDays,
    Group,
    IsoDate,
    Level,
    Percent,
    Points,
    Stamps,
    Vix,
)

MarketRegime = Literal["TRENDING_UP", "TRENDING_DOWN", "RANGE_BOUND", "HIGH_VOLATILITY"]


class MarketRegimeLabel(Group):
    label: MarketRegime | None = Field(description="null while the history is too short")


# a JSON array, so a list is accepted for the pair; its items stay strict
SparkPoint = Annotated[
    tuple[Annotated[int, Strict()], Annotated[float, Strict(), Field(gt=0)]],
    Field(strict=False, description="[epoch seconds of the bar's open, close in points]"),
]


class MarketData(Group):
    spot: Level
    prev_close: Level | None = Field(description="previous session's close, points")
    spot_change: Points | None = Field(description="spot - prev_close, points")
    spot_change_pct: Percent | None = Field(description="spot change over prev_close, percent")
    vix: Vix | None
    vix_change: float | None = Field(description="against the previous VIX close, VIX points")
    vix_as_of: IsoDate | None = Field(description="session of the VIX value")
    next_expiry: IsoDate = Field(description="the target weekly expiry")
    days_to_expiry: CalendarDays
    sparkline: list[SparkPoint] = Field(max_length=60, description="the recent closes")
    session_open: Level | None = Field(None, description="intraday blocks only, points")
    session_high: Level | None = Field(None, description="intraday blocks only, points")
    session_low: Level | None = Field(None, description="intraday blocks only, points")
    regime: MarketRegimeLabel


class Market(MarketData, Stamps):
    pass
