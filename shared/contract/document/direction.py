"""The direction section: today's call, the t1..t40 horizons, the risk score and the market
regime (services/direction/compute.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shared.contract.document.base import Contract, Group, Points, Probability, Share, Stamps
from shared.contract.document.market import MarketRegimeLabel


class Probabilities(Contract):
    up: Probability
    neutral: Probability
    down: Probability


class Call(Group):
    direction: Literal["UP", "DOWN", "NEUTRAL"] = Field(
        description="the most probable class; NEUTRAL also on an exact up/down tie"
    )
    conviction: Probability = Field(description="probability of the called class, 0-1")
    probabilities: Probabilities
    expected_move_points: Points = Field(description="expected move over the span, points")


class Today(Call):
    basis: str = Field(
        description="the span covered: the rest of today's session, or the next session (t1) "
        "after the close"
    )


class Horizon(Call):
    label: str = Field(description='"1 session", "3 sessions", ...')
    forecast: bool = Field(
        description="false when the probabilities are base rates (climatology, or a heuristic "
        "without a model): no edge over them was shown out of sample, so `direction` is only "
        "the base rates' most frequent class, not a forecast"
    )
    beats_climatology: bool = Field(description="significant out-of-sample skill over it")
    climatology: Probabilities = Field(description="the training window's class frequencies")


class Horizons(Contract):
    t1: Horizon
    t3: Horizon
    t5: Horizon
    t10: Horizon
    t20: Horizon
    t40: Horizon


class RiskComponents(Contract):
    """Each 0-1; null where the history is too short (left out of the weighted mean)."""

    iv_level: Share | None = Field(description="India VIX percentile over 252 sessions")
    rv_level: Share | None = Field(description="realised volatility percentile, 252 sessions")
    drawdown: Share | None = Field(description="distance below the 20-session high, scaled")
    downside: Probability = Field(description="P(DOWN) over 5 sessions")


class RiskScore(Group):
    value: float = Field(ge=0, le=100, description="market risk 0-100, higher = riskier")
    components: RiskComponents


class DirectionData(Contract):
    today: Today
    horizons: Horizons
    risk_score: RiskScore
    regime: MarketRegimeLabel


class Direction(DirectionData, Stamps):
    pass
