"""The seller's option-chain group (docs/CHAIN.md): PCR, OI walls, smile, 25-delta skew,
straddle, ATM IV, max pain, OI by strike, and the depth groups (Greeks, dealer gamma,
build-up, term structure, synthetic forward) of the target expiry's fresh chain; or
``unavailable`` with its reason (services/seller/compute.py, services/seller/chain_depth.py).
Per-strike rows cover the strikes within 5 % of spot. ``status`` is the tag of the union
(written first)."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta

from shared.contract.document.base import (
    Contract,
    Count,
    Group,
    IsoDate,
    Level,
    NonNegative,
    Percent,
    Percentile,
    Points,
    Probability,
    Reason,
    Rupees,
    Share,
    Time,
    Units,
    Vol,
    VolSpread,
    doc,
    ordered,
)

OtmSide = Literal["put", "call"]
Buildup = Literal["long_buildup", "short_buildup", "short_covering", "long_unwinding", "neutral"]


class ChainUnavailable(Group, tag_field="status", tag="unavailable", frozen=True):
    """No chain of the target expiry, one older than AEGIS_CHAIN_MAX_AGE_S, or its spot off
    the bars' by more than AEGIS_CHAIN_SPOT_BAND."""

    reason: Reason


class Pcr(Group, frozen=True):
    """Put-call ratios (puts / calls), whole chain and within 2 % of spot."""

    oi: NonNegative | None
    volume: NonNegative | None
    oi_near_atm: NonNegative | None
    volume_near_atm: NonNegative | None
    near_strikes: Annotated[Count, doc("strikes within the near-ATM band")]


class Wall(Contract, frozen=True):
    strike: Level
    oi: Units
    change_since_previous: Annotated[Units | None, doc("null without a previous snapshot")]
    change_published: Annotated[Units | None, doc("the exchange's change since the close")]
    distance_points: Annotated[Points, doc("strike - spot, points")]


class Walls(Group, frozen=True):
    calls: Annotated[list[Wall], doc("largest call OI above spot, largest first")]
    puts: Annotated[list[Wall], doc("largest put OI below spot, largest first")]
    previous_as_of: Time | None


class SmilePoint(Contract, frozen=True):
    strike: Level
    iv: Vol
    side: Annotated[OtmSide, doc("the out-of-the-money option used")]
    published: Annotated[bool, doc("the exchange's IV (else implied here from the LTP)")]


class Smile(Group, frozen=True):
    forward: Level | None
    forward_from_parity: bool | None
    points: list[SmilePoint]


class DeltaSkew(Group, frozen=True):
    risk_reversal: Annotated[VolSpread | None, doc("IV(25-delta put) - IV(25-delta call)")]
    put_strike: Level | None
    put_iv: Vol | None
    call_strike: Level | None
    call_iv: Vol | None


class StraddleBand(Contract, frozen=True):
    """The straddle's lognormal band at the safe range's coverage target; lower <= upper."""

    lower: Level
    upper: Level
    coverage: Probability
    formula: str

    def __post_init__(self) -> None:
        ordered(self.lower, self.upper, "straddle band")


class Straddle(Group, frozen=True):
    strike: Level | None
    move_points: Annotated[NonNegative | None, doc("ATM straddle price, points")]
    move_pct: Annotated[Share | None, doc("straddle price / spot, a fraction (0.01 = 1 %)")]
    one_sd_points: Annotated[NonNegative | None, doc("move_points / sqrt(2/pi), points")]
    vix_implied_move_points: Annotated[
        NonNegative | None, doc("S*VIX/100*sqrt(T/365) over the same time, points")
    ]
    band: StraddleBand | None


class AtmIv(Group, frozen=True):
    value: Vol | None
    percentile: Annotated[Percentile | None, doc("among the earlier snapshots held")]
    rank: Annotated[Share | None, doc("(IV - min) / (max - min) over the snapshots held")]
    history_snapshots: Count
    reason: Reason | None


class ChainMaxPain(Group, frozen=True):
    strike: Level | None
    lower: Level | None
    upper: Level | None


class OiRow(Contract, frozen=True):
    strike: Level
    ce_oi: Units
    pe_oi: Units
    ce_change: Annotated[Units | None, doc("since the previous snapshot")]
    pe_change: Annotated[Units | None, doc("since the previous snapshot")]


class GreeksRow(Contract, frozen=True):
    """Black-76 at the row's call IV (the put's delta from parity)."""

    strike: Level
    iv: Vol | None
    iv_published: bool
    call_delta: Annotated[float, Meta(ge=0, le=1)] | None
    put_delta: Annotated[float, Meta(ge=-1, le=0)] | None
    gamma_per_point: Annotated[NonNegative | None, doc("delta change per index point")]
    vega_points_per_vol_point: Annotated[
        NonNegative | None, doc("option price change per 1 vol point, points")
    ]
    theta_points_per_day: Annotated[float | None, doc("option price per calendar day")]
    reason: Reason | None


class Greeks(Group, frozen=True):
    forward: Level
    forward_from_parity: bool
    years_to_expiry: NonNegative
    reason: Reason | None
    strikes: list[GreeksRow]


class GammaRow(Contract, frozen=True):
    strike: Level
    call_rupees_per_1pct: Rupees | None
    put_rupees_per_1pct: Rupees | None
    net_rupees_per_1pct: Rupees | None


class GammaExposure(Group, frozen=True):
    total_rupees_per_1pct: Rupees
    regime: Literal["positive", "negative"] | None
    zero_gamma_level: Level | None
    zero_gamma_reason: Reason | None
    zero_gamma_range_pct: Annotated[Percent, doc("spot range searched, percent either side")]
    call_oi_without_gamma_units: Annotated[Units, doc("call OI left out: no IV")]
    put_oi_without_gamma_units: Annotated[Units, doc("put OI left out: no IV")]
    sign_convention: str
    by_strike: list[GammaRow]


class BuildupCounts(Contract, omit_defaults=True, frozen=True):
    """Strikes per build-up class; a class no strike is in is left out."""

    long_buildup: Count = 0
    short_buildup: Count = 0
    short_covering: Count = 0
    long_unwinding: Count = 0
    neutral: Count = 0


class BuildupSideCounts(Contract, frozen=True):
    call: BuildupCounts
    put: BuildupCounts


class BuildupRow(Contract, frozen=True):
    strike: Level
    call: Buildup | None
    put: Buildup | None
    call_oi_change_units: Annotated[
        Units | None, doc("null: the strike is not in the snapshot compared against")
    ]
    put_oi_change_units: Annotated[
        Units | None, doc("null: the strike is not in the snapshot compared against")
    ]
    call_price_change_points: Points | None
    put_price_change_points: Points | None


class BuildupSpan(Contract, frozen=True):
    since: Annotated[Time, doc("the snapshot compared against")]
    counts: BuildupSideCounts
    by_strike: list[BuildupRow]


class BuildupGroup(Group, frozen=True):
    since_previous: BuildupSpan | None
    since_close: Annotated[
        BuildupSpan | None, doc("against the last snapshot of the previous session held")
    ]
    since_close_reason: Reason | None


class TermPoint(Contract, frozen=True):
    expiry: IsoDate
    days_to_expiry: Annotated[NonNegative, doc("calendar days to the expiry close")]
    atm_iv: Vol | None
    risk_reversal_25d: VolSpread | None
    butterfly_25d: VolSpread | None
    chain_as_of: Time
    reason: Reason | None


class TermStructure(Group, frozen=True):
    expiries: list[TermPoint]


class Forward(Group, frozen=True):
    forward: Annotated[Level | None, doc("synthetic forward from put-call parity, points")]
    basis_points: Annotated[Points | None, doc("forward - spot, points")]
    basis_percent: Annotated[Percent | None, doc("100 x (forward - spot) / spot")]
    parity_strikes: list[Level]
    reason: Reason | None


class ChainFresh(Group, tag_field="status", tag="fresh", frozen=True):
    expiry: IsoDate
    chain_as_of: Time
    age_s: Annotated[Count, doc("seconds from the chain's snapshot to the block")]
    spot: Annotated[Level, doc("the chain's own spot, points")]
    source: str
    pcr: Pcr
    walls: Walls
    smile: Smile
    delta_skew: DeltaSkew
    straddle: Straddle
    atm_iv: AtmIv
    max_pain: ChainMaxPain
    oi_by_strike: list[OiRow]
    greeks: Greeks
    gamma_exposure: GammaExposure
    buildup: BuildupGroup
    term_structure: TermStructure
    forward: Forward


SellerChain = ChainFresh | ChainUnavailable
