"""The direction section: today's call, the t1..t40 horizons, the risk score and the market
regime (services/direction/compute.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta

from shared.contract.document.base import Contract, Group, Points, Probability, Share, doc
from shared.contract.document.market import MarketRegimeLabel

DirectionCall = Literal["UP", "DOWN", "NEUTRAL"]


class Probabilities(Contract, frozen=True):
    up: Probability
    neutral: Probability
    down: Probability


class Call(Group, frozen=True):
    direction: Annotated[
        DirectionCall, doc("the most probable class; NEUTRAL also on an exact up/down tie")
    ]
    conviction: Annotated[Probability, doc("probability of the called class, 0-1")]
    probabilities: Probabilities
    expected_move_points: Annotated[Points, doc("expected move over the span, points")]


class Today(Call, frozen=True):
    basis: Annotated[
        str,
        doc(
            "the span covered: the rest of today's session, or the next session (t1) after "
            "the close"
        ),
    ]


class Horizon(Call, frozen=True):
    label: Annotated[str, doc('"1 session", "3 sessions", ...')]
    forecast: Annotated[
        bool,
        doc(
            "false when the probabilities are base rates (climatology, or a heuristic without "
            "a model): no edge over them was shown out of sample, so `direction` is only the "
            "base rates' most frequent class, not a forecast"
        ),
    ]
    beats_climatology: Annotated[bool, doc("significant out-of-sample skill over it")]
    climatology: Annotated[Probabilities, doc("the training window's class frequencies")]


class Horizons(Contract, frozen=True):
    t1: Horizon
    t3: Horizon
    t5: Horizon
    t10: Horizon
    t20: Horizon
    t40: Horizon


class RiskComponents(Contract, frozen=True):
    """Each 0-1; null where the history is too short (left out of the weighted mean)."""

    iv_level: Annotated[Share | None, doc("India VIX percentile over 252 sessions")]
    rv_level: Annotated[Share | None, doc("realised volatility percentile, 252 sessions")]
    drawdown: Annotated[Share | None, doc("distance below the 20-session high, scaled")]
    downside: Annotated[Probability, doc("P(DOWN) over 5 sessions")]


class RiskScore(Group, frozen=True):
    value: Annotated[float, Meta(ge=0, le=100), doc("market risk 0-100, higher = riskier")]
    components: RiskComponents


class DirectionData(Contract, frozen=True):
    today: Today
    horizons: Horizons
    risk_score: RiskScore
    regime: MarketRegimeLabel
