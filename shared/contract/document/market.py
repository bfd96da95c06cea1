"""The market section (the features worker): spot, India VIX, the expiry and the trend
regime, straight from the bars (services/features/market.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct

from shared.contract.document.base import (
    UNSET,
    CalendarDays,
    Group,
    IsoDate,
    Level,
    Percent,
    Points,
    UnsetType,
    Vix,
    doc,
)

MarketRegime = Literal["TRENDING_UP", "TRENDING_DOWN", "RANGE_BOUND", "HIGH_VOLATILITY"]


class MarketRegimeLabel(Group, frozen=True):
    label: Annotated[MarketRegime | None, doc("null while the history is too short")]


class SparkPoint(Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    """One bar of the sparkline."""

    open_time: Annotated[int, doc("epoch seconds of the bar's open")]
    close: Level


class MarketData(Group, frozen=True):
    spot: Level
    prev_close: Annotated[Level | None, doc("previous session's close, points")]
    spot_change: Annotated[Points | None, doc("spot - prev_close, points")]
    spot_change_pct: Annotated[Percent | None, doc("spot change over prev_close, percent")]
    vix: Vix | None
    vix_change: Annotated[float | None, doc("against the previous VIX close, VIX points")]
    vix_as_of: Annotated[IsoDate | None, doc("session of the VIX value")]
    next_expiry: Annotated[IsoDate, doc("the target weekly expiry")]
    days_to_expiry: CalendarDays
    sparkline: Annotated[list[SparkPoint], Meta(max_length=60), doc("the recent closes")]
    regime: MarketRegimeLabel
    session_open: Annotated[Level | None, doc("intraday blocks only, points")] | UnsetType = UNSET
    session_high: Annotated[Level | None, doc("intraday blocks only, points")] | UnsetType = UNSET
    session_low: Annotated[Level | None, doc("intraday blocks only, points")] | UnsetType = UNSET
