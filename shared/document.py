"""The output document's contract (docs/DOCUMENT.md), declared once: engines' sections are
validated against it (``validate_section``), the gateway serves it as GET /api/v1/schema and
in its OpenAPI description, and the end-to-end test checks real engine output with it.
Engines may add fields (extra allowed); the stamps and the documented groups are required
where DOCUMENT.md says so. Provenance and model references are the bus schemas' own."""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.schemas import Engine, ModelRef, Provenance

Prob = Annotated[float, Field(ge=0, le=1)]


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Group(Open):
    provenance: Provenance


class Stamps(Open):
    as_of: str = Field(description="ISO time of the bar this block reflects")
    session_date: str
    kind: Literal["daily", "intraday"]
    computed_at: str
    freshness_limit_s: int
    stale: bool = Field(description="older than freshness_limit_s against the clock")
    models: list[ModelRef]
    degraded: list[str]


class Label(Group):
    label: str | None = Field(description="null while the history is too short to classify")


Price = Annotated[float, Field(gt=0, description="index points")]


class Market(Stamps):
    spot: Price
    spot_change: float | None = None
    spot_change_pct: float | None = None
    prev_close: float | None = None
    vix: float | None = None
    vix_change: float | None = None
    vix_as_of: str | None = None
    regime: Label
    sparkline: list[tuple[float, float]] | None = None


class Probabilities(BaseModel):
    up: Prob
    neutral: Prob
    down: Prob


class Call(Group):
    direction: Literal["UP", "DOWN", "NEUTRAL"]
    conviction: Prob
    probabilities: Probabilities
    expected_move_points: float | None = None


class Horizon(Call):
    label: str
    forecast: bool = Field(
        description="false when the probabilities are base rates (climatology, or a heuristic "
        "without a model): no edge over them was shown out of sample, so `direction` is only "
        "the base rates' most frequent class, not a forecast"
    )
    beats_climatology: bool | None = None
    climatology: Probabilities | None = None


class Horizons(BaseModel):
    t1: Horizon
    t3: Horizon
    t5: Horizon
    t10: Horizon
    t20: Horizon
    t40: Horizon


class RiskScore(Group):
    value: float = Field(ge=0, le=100)


class Direction(Stamps):
    today: Call
    horizons: Horizons
    risk_score: RiskScore
    regime: Label | None = None


class Score(Group):
    score: Prob | None = None
    label: str | None = None


class Breakout(Score):
    broken: str | None = None
    basis: str | None = Field(None, description="the span the score covers")


class Rate(Group):
    value: Prob | None = None
    window: str | None = None
    regime: str | None = None
    samples: int | None = None


class SafeRange(Group):
    spot: Price | None = Field(None, description="the spot the range was computed at")
    vix: float | None = Field(None, gt=0, description="the India VIX it was computed with")
    lower: Price
    upper: Price
    coverage_target: Prob
    expiry: str
    days_to_expiry: int = Field(ge=0, description="calendar days; the expiry day counts as 0")
    z_lower: float
    z_upper: float

    @model_validator(mode="after")
    def _ordered(self) -> SafeRange:
        if self.lower > self.upper:
            raise ValueError(f"lower {self.lower} is above upper {self.upper}")
        return self


class Seller(Stamps):
    safe_range: SafeRange
    max_pain: Group
    trap: Score
    skew: Group
    expiry_stress: Score
    breach_probabilities: Group
    seller_flag: Label
    historical_hit_rate: Rate
    regime: Label | None = None
    chain: Group | None = Field(None, description="option-chain analytics (docs/CHAIN.md)")


class Buyer(Stamps):
    breakout_today: Breakout
    breakout_next: Group
    spike_direction_bias: Group
    gamma_windows: Group
    theta_edge: Score
    regime: Label
    breakout_levels: Group
    environment: Label
    historical_spike_rate: Rate
    chain: Group | None = Field(None, description="straddle vs breakout levels (docs/CHAIN.md)")


class ServiceHealth(BaseModel):
    status: Literal["ok", "degraded", "down"]
    replicas: int
    models: list[dict[str, Any]]
    degraded_reasons: list[str]
    last_message_at: str | None = Field(None, description="null with the event clock")
    lag: int | None = Field(None, description="null with the event clock")


class Health(BaseModel):
    status: Literal["ok", "degraded", "down"]
    engines: dict[str, ServiceHealth]


class ClockSection(BaseModel):
    """What stale flags and ages are judged against (shared.clock)."""

    mode: Literal["live", "replay", "event"]
    now: str = Field(description="the clock's time when this document or message was made")
    rate: float = Field(description="clock seconds per wall second from now on (speed, 1, 0)")
    speed: float | None = Field(None, description="replay speed; null live")
    replay_date: str | None = Field(None, description="IST date of the replay clock")
    source: str | None = None
    finished: bool | None = Field(None, description="the replay has published everything")
    market_open: bool | None = Field(None, description="the NSE session is open at ``now``")
    next_open: str | None = Field(None, description="when the session next opens; null if open")


class Document(BaseModel):
    """aegismatrix.json, schema_version 1. A section is null until its engine's first block."""

    schema_version: Literal[1]
    generated_at: str | None
    epoch: int = Field(0, description="the sequence counts within this; a new one: a restart")
    sequence: int = Field(description="increases by one per change")
    market: Market | None
    direction: Direction | None
    seller: Seller | None
    buyer: Buyer | None
    health: Health
    clock: ClockSection | None = None


ENGINES: tuple[Engine, ...] = get_args(Engine)
SECTIONS: dict[Engine, type[Stamps]] = {
    "market": Market,
    "direction": Direction,
    "seller": Seller,
    "buyer": Buyer,
}


def validate_section(engine: Engine, section: dict[str, Any]) -> Stamps:
    """``section`` (a block's data with its stamps, as the document holds it) checked against
    the contract; raises pydantic.ValidationError naming every field that breaks it."""
    return SECTIONS[engine].model_validate(section)


def document_json_schema() -> dict[str, Any]:
    return Document.model_json_schema()
