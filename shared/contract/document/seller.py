"""The seller section: safe range to expiry, max pain, volatility trap, skew, expiry stress,
breach curve, seller flag, measured hit rate, positioning and the option chain
(services/seller/compute.py; the chain group in shared/contract/document/chain.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from shared.contract.document.base import (
    UNSET,
    CalendarDays,
    Contract,
    Contracts,
    Group,
    IsoDate,
    Level,
    NonNegative,
    Percent,
    Percentile,
    Points,
    Probability,
    Rate,
    Reason,
    Selection,
    Share,
    Time,
    Units,
    UnsetType,
    Vix,
    Vol,
    VolSpread,
    doc,
    ordered,
)
from shared.contract.document.chain import Buildup, SellerChain

Side = Literal["above", "below"]
TrapLabel = Literal["LOW", "ELEVATED", "HIGH"]
StressLabel = Literal["CALM", "CAUTION", "STRESS"]
SellerFlagLabel = Literal["FAVOURABLE", "NEUTRAL", "RISKY"]
VixRegime = Literal["LOW", "NORMAL", "HIGH", "UNKNOWN"]


class SafeRange(Group, frozen=True):
    """The band the expiry close should stay inside with ``coverage_target`` probability;
    lower <= upper. ``expiry``: during an expiry day's session that day (0 DTE); from its
    close (every daily block), the next weekly expiry. ``spot`` and ``vix``: what it was
    computed at (the history's scorecard scores it from them)."""

    spot: Annotated[Level, doc("the spot the range was computed at, points")]
    vix: Annotated[Vix, doc("the India VIX it was computed with")]
    lower: Level
    upper: Level
    coverage_target: Probability
    expiry: IsoDate
    days_to_expiry: CalendarDays
    z_lower: Annotated[float, doc("lower bound in VIX-implied sigmas below spot")]
    z_upper: Annotated[float, doc("upper bound in VIX-implied sigmas above spot")]
    selection: Selection | UnsetType | None = UNSET

    def __post_init__(self) -> None:
        ordered(self.lower, self.upper, "safe range")


class MaxPain(Group, frozen=True):
    """Of the target expiry's fresh chain (lower <= upper); ``strike`` null and ``reason``
    without one."""

    strike: Level | None
    lower: Annotated[Level | None, doc("zone of near-minimal payout, points")] | UnsetType = UNSET
    upper: Annotated[Level | None, doc("zone of near-minimal payout, points")] | UnsetType = UNSET
    chain_as_of: Time | UnsetType | None = UNSET
    expiry: IsoDate | UnsetType | None = UNSET
    reason: Reason | UnsetType | None = UNSET

    def __post_init__(self) -> None:
        if self.strike is None and not self.reason:
            raise ValueError("max pain without a strike says why (reason)")
        if not isinstance(self.lower, UnsetType) and not isinstance(self.upper, UnsetType):
            ordered(self.lower, self.upper, "max pain zone")


class Trap(Group, frozen=True):
    """Volatility trap: the chance realised volatility to expiry exceeds the implied."""

    score: Probability | None
    label: TrapLabel | None
    iv_percentile: Annotated[Percentile | None, doc("India VIX, 252 sessions")]
    rv_percentile: Annotated[Percentile | None, doc("realised volatility, 252 sessions")]
    selection: Selection | None


class Skew(Group, frozen=True):
    """Downside minus upside volatility: option IVs (chain_iv) or return semi-volatilities
    (return_distribution); all null with neither."""

    put: Annotated[
        VolSpread | None,
        doc("IV 2 % below the forward - ATM IV (returns: downside semi-vol - vol)"),
    ]
    call: Annotated[
        VolSpread | None, doc("IV 2 % above the forward - ATM IV (returns: upside semi-vol - vol)")
    ]
    net: Annotated[VolSpread | None, doc("put - call")]
    method: Literal["chain_iv", "return_distribution"] | None
    atm_iv: Annotated[Vol | None, doc("chain_iv only")] | UnsetType = UNSET


class StressProbabilities(Contract, frozen=True):
    low: Probability
    medium: Probability
    high: Probability


class ExpiryStress(Group, frozen=True):
    """Realised volatility to expiry in terciles; all null without an answer."""

    score: Annotated[Probability | None, doc("0.5*P(medium) + P(high)")]
    label: StressLabel | None
    probabilities: StressProbabilities | None
    selection: Selection | UnsetType | None = UNSET


class BreachPoint(Contract, frozen=True):
    strike: Level
    distance_points: Annotated[NonNegative, doc("from spot, points")]
    distance_pct: Annotated[NonNegative, doc("from spot, percent")]
    side: Side
    probability: Annotated[Probability, doc("P(the expiry close beyond the strike)")]


class BreachCurve(Group, frozen=True):
    points: list[BreachPoint]
    selection: Selection | None


class SellerFlag(Group, frozen=True):
    label: SellerFlagLabel | None
    reasons: list[str]


class HitRate(Rate, frozen=True):
    """Out-of-sample share of expiries that closed inside the safe range."""

    below_share: Annotated[Share | None, doc("closed below the range")] | UnsetType = UNSET
    above_share: Annotated[Share | None, doc("closed above the range")] | UnsetType = UNSET


class VixRegimeLabel(Group, frozen=True):
    label: Annotated[VixRegime, doc("India VIX below 13, below 20, else HIGH")]


class NetSeries(Contract, frozen=True):
    """One participant's net position series at its last report."""

    value_contracts: Contracts
    change_contracts: Annotated[Contracts | None, doc("since the previous report")]
    trend_contracts: Annotated[Contracts | None, doc("over the trend's reports")]
    slope_sign: Literal[-1, 0, 1] | None


class FutureDay(Group, frozen=True):
    """The near-month future's last end-of-day row and its build-up."""

    session_date: IsoDate
    expiry: IsoDate
    close: Level
    basis_percent: Annotated[Percent | None, doc("100 x (future - spot) / spot")]
    oi_units: Units
    oi_change_units: Units | None
    price_change_points: Points | None
    buildup: Buildup | None
    buildup_reason: Reason | None


class PositioningUnavailable(Group, tag_field="status", tag="unavailable", frozen=True):
    reason: Reason
    future: FutureDay | None


class PositioningReport(Group, frozen=True):
    """FII index futures and options nets (NSE participant-wise OI)."""

    reason: Reason | None
    participant: str
    report_date: IsoDate | None
    previous_report_date: IsoDate | None
    trend_from: IsoDate | None
    index_futures: NetSeries | None
    index_options: Annotated[NetSeries | None, doc("calls net - puts net")]
    futures_long_ratio: Annotated[Share | None, doc("long / (long + short) index futures")]
    futures_long_ratio_change: Annotated[float | None, doc("since the previous report")]
    notes: Annotated[list[str], doc("why any value is null")]
    future: FutureDay | None


class PositioningFresh(PositioningReport, tag_field="status", tag="fresh", frozen=True):
    """The newest report is the one due."""


class PositioningStale(PositioningReport, tag_field="status", tag="stale", frozen=True):
    """An expected report is missing (``reason`` says which)."""


Positioning = PositioningFresh | PositioningStale | PositioningUnavailable


class SellerData(Contract, frozen=True):
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
