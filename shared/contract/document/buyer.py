"""The buyer section: breakout today and over the next sessions, spike direction bias, the
half hours that held the day's largest move, theta edge, buyer regime, breakout levels, the
environment, the measured spike rate and the straddle beside the breakout levels
(services/buyer/compute.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from shared.contract.document.base import (
    Contract,
    Group,
    IsoDate,
    Level,
    Points,
    Probability,
    Rate,
    Stamps,
)
from shared.contract.document.chain import ChainUnavailable


class BreakoutToday(Group):
    """P(the session breaks the prior high or low by 0.25*ATR14); 1 once it has."""

    score: Probability
    label: Literal["LOW", "MODERATE", "HIGH"]
    broken: Literal["up", "down"] | None = Field(description="the side already broken")
    basis: str | None = Field(None, description="the span the score covers; absent once broken")


class NextDay(Contract):
    day_offset: int = Field(ge=1, description="sessions ahead")
    date: IsoDate
    score: Probability


class BreakoutNext(Group):
    days: list[NextDay]


class SpikeBias(Group):
    up_prob: Probability = Field(description="P(up | a spike session)")
    down_prob: Probability = Field(description="P(down | a spike session)")


class GammaWindow(Contract):
    block: Annotated[str, Field(pattern=r"^\d{2}:\d{2}-\d{2}:\d{2}$")] = Field(
        description="half hour of the session, IST"
    )
    score: Probability | None = Field(
        description="share of sessions whose largest 30-minute move fell here; null unmeasured"
    )


class GammaWindows(Group):
    windows: list[GammaWindow]


class ThetaEdge(Group):
    score: Probability = Field(description="predicted / (predicted + expected implied) move")
    label: Literal["don't waste premium", "neutral", "edge justifies premium"]
    predicted_move_points: Points = Field(description="expected absolute move to expiry")
    implied_move_points: Annotated[float, Field(ge=0)] = Field(
        description="the market's one-sd move to expiry, points"
    )
    implied_formula: str
    implied_basis: Literal["atm_straddle", "india_vix"]
    implied_basis_reason: str


class BuyerRegime(Group):
    label: Literal["TREND_FOLLOWING", "MEAN_REVERTING", "CHOPPY"] | None = Field(
        description="null while the history is too short"
    )


class BreakoutLevels(Group):
    """lower <= upper."""

    upper: Level = Field(description="prior session high + 0.25*ATR14, points")
    lower: Level = Field(description="prior session low - 0.25*ATR14, points")

    @model_validator(mode="after")
    def _ordered(self) -> BreakoutLevels:
        if self.lower > self.upper:
            raise ValueError(f"breakout levels: lower {self.lower} is above upper {self.upper}")
        return self


class Environment(Group):
    """Context, never advice."""

    label: Literal["premium-friendly", "cautious", "avoid full risk"]
    text: str


class BuyerChainFresh(Group):
    status: Literal["fresh"]
    straddle_move_points: Annotated[float, Field(ge=0)] = Field(
        description="ATM straddle price, points"
    )
    straddle_upper: Level = Field(description="spot + straddle, points")
    straddle_lower: Points = Field(description="spot - straddle, points")
    breakout_upper_beyond_straddle: bool
    breakout_lower_beyond_straddle: bool


BuyerChain = Annotated[BuyerChainFresh | ChainUnavailable, Field(discriminator="status")]


class BuyerData(Contract):
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


class Buyer(BuyerData, Stamps):
    pass
