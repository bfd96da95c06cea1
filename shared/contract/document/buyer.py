"""The buyer section: breakout today and over the next sessions, spike direction bias, the
half hours that held the day's largest move, theta edge, buyer regime, breakout levels, the
environment, the measured spike rate and the straddle beside the breakout levels
(services/buyer/compute.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta

from shared.contract.document.base import (
    UNSET,
    Contract,
    Group,
    IsoDate,
    Level,
    NonNegative,
    Points,
    Probability,
    Rate,
    UnsetType,
    doc,
    ordered,
)
from shared.contract.document.chain import ChainUnavailable

BreakoutLabel = Literal["LOW", "MODERATE", "HIGH"]
ThetaLabel = Literal["don't waste premium", "neutral", "edge justifies premium"]
BuyerRegimeName = Literal["TREND_FOLLOWING", "MEAN_REVERTING", "CHOPPY"]
EnvironmentLabel = Literal["premium-friendly", "cautious", "avoid full risk"]


class BreakoutToday(Group, frozen=True):
    """P(the session breaks the prior high or low by 0.25*ATR14); 1 once it has."""

    score: Probability
    label: BreakoutLabel
    broken: Annotated[Literal["up", "down"] | None, doc("the side already broken")]
    basis: (
        Annotated[str | None, doc("the span the score covers; absent once broken")] | UnsetType
    ) = UNSET


class NextDay(Contract, frozen=True):
    day_offset: Annotated[int, Meta(ge=1), doc("sessions ahead")]
    date: IsoDate
    score: Probability


class BreakoutNext(Group, frozen=True):
    days: list[NextDay]


class SpikeBias(Group, frozen=True):
    up_prob: Annotated[Probability, doc("P(up | a spike session)")]
    down_prob: Annotated[Probability, doc("P(down | a spike session)")]


class GammaWindow(Contract, frozen=True):
    block: Annotated[
        str, Meta(pattern=r"^\d{2}:\d{2}-\d{2}:\d{2}$"), doc("half hour of the session, IST")
    ]
    score: Annotated[
        Probability | None,
        doc("share of sessions whose largest 30-minute move fell here; null unmeasured"),
    ]


class GammaWindows(Group, frozen=True):
    windows: list[GammaWindow]


class ThetaEdge(Group, frozen=True):
    score: Annotated[Probability, doc("predicted / (predicted + expected implied) move")]
    label: ThetaLabel
    predicted_move_points: Annotated[Points, doc("expected absolute move to expiry")]
    implied_move_points: Annotated[NonNegative, doc("the market's one-sd move to expiry, points")]
    implied_formula: str
    implied_basis: Literal["atm_straddle", "india_vix"]
    implied_basis_reason: str


class BuyerRegime(Group, frozen=True):
    label: Annotated[BuyerRegimeName | None, doc("null while the history is too short")]


class BreakoutLevels(Group, frozen=True):
    """lower <= upper."""

    upper: Annotated[Level, doc("prior session high + 0.25*ATR14, points")]
    lower: Annotated[Level, doc("prior session low - 0.25*ATR14, points")]

    def __post_init__(self) -> None:
        ordered(self.lower, self.upper, "breakout levels")


class Environment(Group, frozen=True):
    """Context, never advice."""

    label: EnvironmentLabel
    text: str


class BuyerChainFresh(Group, tag_field="status", tag="fresh", frozen=True):
    straddle_move_points: Annotated[NonNegative, doc("ATM straddle price, points")]
    straddle_upper: Annotated[Level, doc("spot + straddle, points")]
    straddle_lower: Annotated[Points, doc("spot - straddle, points")]
    breakout_upper_beyond_straddle: bool
    breakout_lower_beyond_straddle: bool


BuyerChain = BuyerChainFresh | ChainUnavailable


class BuyerData(Contract, frozen=True):
    breakout_today: BreakoutToday
    breakout_next: BreakoutNext
    spike_direction_bias: SpikeBias
    gamma_windows: GammaWindows
    theta_edge: ThetaEdge
    regime: BuyerRegime
    breakout_levels: BreakoutLevels
    environment: Environment
    historical_spike_rate: Rate
    chain: BuyerChain
