"""The seller's option-chain group (docs/CHAIN.md): PCR, OI walls, smile, 25-delta skew,
straddle, ATM IV, max pain, OI by strike, and the depth groups (Greeks, dealer gamma,
build-up, term structure, synthetic forward) of the target expiry's fresh chain; or
``unavailable`` with its reason (services/seller/compute.py, services/seller/chain_depth.py).
Per-strike rows cover the strikes within 5 % of spot."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from shared.contract.document.base import (
    Contract,
    Group,
    IsoDate,
    Level,
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
)

Buildup = Literal["long_buildup", "short_buildup", "short_covering", "long_unwinding", "neutral"]
NonNegative = Annotated[float, Field(ge=0)]


class ChainUnavailable(Group):
    """No chain of the target expiry, one older than AEGIS_CHAIN_MAX_AGE_S, or its spot off
    the bars' by more than AEGIS_CHAIN_SPOT_BAND."""

    status: Literal["unavailable"]
    reason: Reason


class Pcr(Group):
    """Put-call ratios (puts / calls), whole chain and within 2 % of spot."""

    oi: NonNegative | None
    volume: NonNegative | None
    oi_near_atm: NonNegative | None
    volume_near_atm: NonNegative | None
    near_strikes: int = Field(ge=0, description="strikes within the near-ATM band")


class Wall(Contract):
    strike: Level
    oi: Units
    change_since_previous: Units | None = Field(description="null without a previous snapshot")
    change_published: Units | None = Field(description="the exchange's change since the close")
    distance_points: Points = Field(description="strike - spot, points")


class Walls(Group):
    calls: list[Wall] = Field(description="largest call OI above spot, largest first")
    puts: list[Wall] = Field(description="largest put OI below spot, largest first")
    previous_as_of: Time | None


class SmilePoint(Contract):
    strike: Level
    iv: Vol
    side: Literal["put", "call"] = Field(description="the out-of-the-money option used")
    published: bool = Field(description="the exchange's IV (else implied here from the LTP)")


class Smile(Group):
    forward: Level | None
    forward_from_parity: bool | None
    points: list[SmilePoint]


class DeltaSkew(Group):
    risk_reversal: VolSpread | None = Field(description="IV(25-delta put) - IV(25-delta call)")
    put_strike: Level | None
    put_iv: Vol | None
    call_strike: Level | None
    call_iv: Vol | None


class StraddleBand(Contract):
    """The straddle's lognormal band at the safe range's coverage target; lower <= upper."""

    lower: Level
    upper: Level
    coverage: Probability
    formula: str

    @model_validator(mode="after")
    def _ordered(self) -> StraddleBand:
        if self.lower > self.upper:
            raise ValueError(f"straddle band: lower {self.lower} is above upper {self.upper}")
        return self


class Straddle(Group):
    strike: Level | None
    move_points: NonNegative | None = Field(description="ATM straddle price, points")
    move_pct: Share | None = Field(description="straddle price / spot, a fraction (0.01 = 1 %)")
    one_sd_points: NonNegative | None = Field(description="move_points / sqrt(2/pi), points")
    vix_implied_move_points: NonNegative | None = Field(
        description="S*VIX/100*sqrt(T/365) over the same time, points"
    )
    band: StraddleBand | None


class AtmIv(Group):
    value: Vol | None
    percentile: Percentile | None = Field(description="among the earlier snapshots held")
    rank: Share | None = Field(description="(IV - min) / (max - min) over the snapshots held")
    history_snapshots: int = Field(ge=0)
    reason: Reason | None


class ChainMaxPain(Group):
    strike: Level | None
    lower: Level | None
    upper: Level | None


class OiRow(Contract):
    strike: Level
    ce_oi: Units
    pe_oi: Units
    ce_change: Units | None = Field(description="since the previous snapshot")
    pe_change: Units | None = Field(description="since the previous snapshot")


class GreeksRow(Contract):
    """Black-76 at the row's call IV (the put's delta from parity)."""

    strike: Level
    iv: Vol | None
    iv_published: bool
    call_delta: Annotated[float, Field(ge=0, le=1)] | None
    put_delta: Annotated[float, Field(ge=-1, le=0)] | None
    gamma_per_point: NonNegative | None = Field(description="delta change per index point")
    vega_points_per_vol_point: NonNegative | None = Field(
        description="option price change per 1 vol point, points"
    )
    theta_points_per_day: float | None = Field(description="option price per calendar day")
    reason: Reason | None


class Greeks(Group):
    forward: Level
    forward_from_parity: bool
    years_to_expiry: NonNegative
    reason: Reason | None
    strikes: list[GreeksRow]


class GammaRow(Contract):
    strike: Level
    call_rupees_per_1pct: Rupees | None
    put_rupees_per_1pct: Rupees | None
    net_rupees_per_1pct: Rupees | None


class GammaExposure(Group):
    total_rupees_per_1pct: Rupees
    regime: Literal["positive", "negative"] | None
    zero_gamma_level: Level | None
    zero_gamma_reason: Reason | None
    zero_gamma_range_pct: Percent = Field(description="spot range searched, percent either side")
    call_oi_without_gamma_units: Units = Field(description="call OI left out: no IV")
    put_oi_without_gamma_units: Units = Field(description="put OI left out: no IV")
    sign_convention: str
    by_strike: list[GammaRow]


class BuildupCounts(Contract):
    """Strikes per build-up class."""

    long_buildup: int = Field(0, ge=0)
    short_buildup: int = Field(0, ge=0)
    short_covering: int = Field(0, ge=0)
    long_unwinding: int = Field(0, ge=0)
    neutral: int = Field(0, ge=0)


class BuildupSideCounts(Contract):
    call: BuildupCounts
    put: BuildupCounts


class BuildupRow(Contract):
    strike: Level
    call: Buildup | None
    put: Buildup | None
    call_oi_change_units: Units
    put_oi_change_units: Units
    call_price_change_points: Points | None
    put_price_change_points: Points | None


class BuildupSpan(Contract):
    since: Time = Field(description="the snapshot compared against")
    counts: BuildupSideCounts
    by_strike: list[BuildupRow]


class BuildupGroup(Group):
    since_previous: BuildupSpan | None
    since_close: BuildupSpan | None = Field(
        description="against the last snapshot of the previous session held"
    )
    since_close_reason: Reason | None


class TermPoint(Contract):
    expiry: IsoDate
    days_to_expiry: NonNegative = Field(description="calendar days to the expiry close")
    atm_iv: Vol | None
    risk_reversal_25d: VolSpread | None
    butterfly_25d: VolSpread | None
    chain_as_of: Time
    reason: Reason | None


class TermStructure(Group):
    expiries: list[TermPoint]


class Forward(Group):
    forward: Level | None = Field(description="synthetic forward from put-call parity, points")
    basis_points: Points | None = Field(description="forward - spot, points")
    basis_percent: Percent | None = Field(description="100 x (forward - spot) / spot")
    parity_strikes: list[Level]
    reason: Reason | None


class ChainFresh(Group):
    status: Literal["fresh"]
    expiry: IsoDate
    chain_as_of: Time
    age_s: int = Field(ge=0, description="seconds from the chain's snapshot to the block")
    spot: Level = Field(description="the chain's own spot, points")
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


SellerChain = Annotated[ChainFresh | ChainUnavailable, Field(discriminator="status")]
