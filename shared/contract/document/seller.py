"""The seller section: safe range to expiry, max pain, volatility trap, skew, expiry stress,
breach curve, seller flag, measured hit rate, positioning and the option chain
(services/seller/compute.py; the chain group in shared/contract/document/chain.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from shared.contract.document.base import (
    CalendarDays,
    Contract,
    Contracts,
    Group,
    IsoDate,
    Level,
    Percent,
    Percentile,
    Points,
    Probability,
    Rate,
    Reason,
    Selection,
    Share,
    Stamps,
    Time,
    Units,
    Vix,
    Vol,
    VolSpread,
)
from shared.contract.document.chain import Buildup, SellerChain

Side = Literal["above", "below"]
SellerFlagLabel = Literal["FAVOURABLE", "NEUTRAL", "RISKY"]


def ordered(lower: float | None, upper: float | None, what: str) -> None:
    if lower is not None and upper is not None and lower > upper:
        raise ValueError(f"{what}: lower {lower} is above upper {upper}")


class SafeRange(Group):
    """The band the expiry close should stay inside with ``coverage_target`` probability;
    lower <= upper. ``expiry``: during an expiry day's session that day (0 DTE); from its
    close (every daily block), the next weekly expiry. ``spot`` and ``vix``: what it was
    computed at (the history's scorecard scores it from them)."""

    spot: Level = Field(description="the spot the range was computed at, points")
    vix: Vix = Field(description="the India VIX it was computed with")
    lower: Level
    upper: Level
    coverage_target: Probability
    expiry: IsoDate
    days_to_expiry: CalendarDays
    z_lower: float = Field(description="lower bound in VIX-implied sigmas below spot")
    z_upper: float = Field(description="upper bound in VIX-implied sigmas above spot")
    selection: Selection | None = None

    @model_validator(mode="after")
    def _ordered(self) -> SafeRange:
        ordered(self.lower, self.upper, "safe range")
        return self


class MaxPain(Group):
    """Of the target expiry's fresh chain (lower <= upper); ``strike`` null and ``reason``
    without one."""

    strike: Level | None
    lower: Level | None = Field(None, description="zone of near-minimal payout, points")
    upper: Level | None = Field(None, description="zone of near-minimal payout, points")
    chain_as_of: Time | None = None
    expiry: IsoDate | None = None
    reason: Reason | None = None

    @model_validator(mode="after")
    def _complete(self) -> MaxPain:
        if self.strike is None and self.reason is None:
            raise ValueError("max pain without a strike says why (reason)")
        ordered(self.lower, self.upper, "max pain zone")
        return self


class Trap(Group):
    """Volatility trap: the chance realised volatility to expiry exceeds the implied."""

    score: Probability | None
    label: Literal["LOW", "ELEVATED", "HIGH"] | None
    iv_percentile: Percentile | None = Field(description="India VIX, 252 sessions")
    rv_percentile: Percentile | None = Field(description="realised volatility, 252 sessions")
    selection: Selection | None


class Skew(Group):
    """Downside minus upside volatility: option IVs (chain_iv) or return semi-volatilities
    (return_distribution); all null with neither."""

    put: VolSpread | None = Field(
        description="IV 2 % below the forward - ATM IV (returns: downside semi-vol - vol)"
    )
    call: VolSpread | None = Field(
        description="IV 2 % above the forward - ATM IV (returns: upside semi-vol - vol)"
    )
    net: VolSpread | None = Field(description="put - call")
    atm_iv: Vol | None = Field(None, description="chain_iv only")
    method: Literal["chain_iv", "return_distribution"] | None


class StressProbabilities(Contract):
    low: Probability
    medium: Probability
    high: Probability


class ExpiryStress(Group):
    """Realised volatility to expiry in terciles; all null without an answer."""

    score: Probability | None = Field(description="0.5*P(medium) + P(high)")
    label: Literal["CALM", "CAUTION", "STRESS"] | None
    probabilities: StressProbabilities | None
    selection: Selection | None = None


class BreachPoint(Contract):
    strike: Level
    distance_points: Annotated[float, Field(ge=0)] = Field(description="from spot, points")
    distance_pct: Annotated[float, Field(ge=0)] = Field(description="from spot, percent")
    side: Side
    probability: Probability = Field(description="P(the expiry close beyond the strike)")


class BreachCurve(Group):
    points: list[BreachPoint]
    selection: Selection | None


class SellerFlag(Group):
    label: SellerFlagLabel | None
    reasons: list[str]


class HitRate(Rate):
    """Out-of-sample share of expiries that closed inside the safe range."""

    below_share: Share | None = Field(None, description="closed below the range")
    above_share: Share | None = Field(None, description="closed above the range")


class VixRegimeLabel(Group):
    label: Literal["LOW", "NORMAL", "HIGH", "UNKNOWN"] = Field(
        description="India VIX below 13, below 20, else HIGH"
    )


class NetSeries(Contract):
    """One participant's net position series at its last report."""

    value_contracts: Contracts
    change_contracts: Contracts | None = Field(description="since the previous report")
    trend_contracts: Contracts | None = Field(description="over the trend's reports")
    slope_sign: Literal[-1, 0, 1] | None


class FutureDay(Group):
    """The near-month future's last end-of-day row and its build-up."""

    session_date: IsoDate
    expiry: IsoDate
    close: Level
    basis_percent: Percent | None = Field(description="100 x (future - spot) / spot")
    oi_units: Units
    oi_change_units: Units | None
    price_change_points: Points | None
    buildup: Buildup | None
    buildup_reason: Reason | None


class PositioningUnavailable(Group):
    status: Literal["unavailable"]
    reason: Reason
    future: FutureDay | None


class PositioningReport(Group):
    """FII index futures and options nets (NSE participant-wise OI)."""

    status: Literal["fresh", "stale"] = Field(description="stale: an expected report is missing")
    reason: Reason | None
    participant: str
    report_date: IsoDate | None
    previous_report_date: IsoDate | None
    trend_from: IsoDate | None
    index_futures: NetSeries | None
    index_options: NetSeries | None = Field(description="calls net - puts net")
    futures_long_ratio: Share | None = Field(description="long / (long + short) index futures")
    futures_long_ratio_change: float | None = Field(description="since the previous report")
    notes: list[str] = Field(description="why any value is null")
    future: FutureDay | None


Positioning = Annotated[PositioningReport | PositioningUnavailable, Field(discriminator="status")]


class SellerData(Contract):
    safe_range: SafeRange
    max_pain: MaxPain
    trap: Trap
    skew: Skew
    expiry_stress: ExpiryStress
    breach_probabilities: BreachCurve
    seller_flag: SellerFlag
    historical_hit_rate: HitRate
    chain: SellerChain
    positioning: Positioning
    regime: VixRegimeLabel


class Seller(SellerData, Stamps):
    pass
