"""What every part of the document contract is made of: the strict, frozen base model that
refuses unknown fields, the units (each type says its unit; a field's own description says
it again where it has one), a signal group (a value with its provenance), the block stamps,
and the groups several engines share."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from shared.contract.schemas import ModelRef, Provenance

DATE = r"^\d{4}-\d{2}-\d{2}$"
TIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"


class Contract(BaseModel):
    """Strict (no coercion: "25000" is not a number, 3.0 is not an integer), finite numbers
    only, frozen, and unknown fields refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


# Units ----------------------------------------------------------------------------------------
Points = Annotated[float, Field(description="index points")]
Level = Annotated[float, Field(gt=0, description="index level, points")]
Probability = Annotated[float, Field(ge=0, le=1, description="probability")]
Share = Annotated[float, Field(ge=0, le=1, description="fraction")]
Percentile = Annotated[float, Field(ge=0, le=1, description="percentile, as a fraction")]
Percent = Annotated[float, Field(description="percent (1.5 = 1.5 %)")]
Vix = Annotated[float, Field(gt=0, description="India VIX, annualised percent")]
Vol = Annotated[float, Field(ge=0, description="annualised volatility, fraction (0.15 = 15 %)")]
VolSpread = Annotated[
    float, Field(description="annualised volatility difference, fraction (0.01 = 1 vol point)")
]
Units = Annotated[float, Field(description="option units (contracts x lot size)")]
Contracts = Annotated[int, Field(description="contracts")]
Rupees = Annotated[float, Field(description="rupees per 1 % move of spot")]
CalendarDays = Annotated[int, Field(ge=0, description="calendar days; the expiry day counts as 0")]
IsoDate = Annotated[str, Field(pattern=DATE, description="ISO date, YYYY-MM-DD (IST session)")]
Time = Annotated[
    str, Field(pattern=TIME, description="ISO 8601 time with its offset (IST from the engines)")
]
Reason = Annotated[str, Field(description="why the value beside it is missing or differs")]


class Group(Contract):
    """A signal group: its values and where they came from."""

    provenance: Provenance

    @field_serializer("provenance")
    def _as_sent(self, value: Provenance) -> dict[str, Any]:
        return value.model_dump(exclude_none=True)  # as the engines send it


class Selection(Contract):
    """The trainer's validation choice between the seller's volatility core and the signal's
    baseline (docs/MODELS.md); null when no seller model is loaded."""

    live: Literal["model", "baseline"] = Field(description="which one the value comes from")
    baseline: str
    metric: str = Field(description="the validation metric compared")
    model_score: float
    baseline_score: float
    skill: float = Field(
        description="1 - model_score / baseline_score where lower is better, else the difference"
    )
    samples: int = Field(ge=0, description="validation sessions")


class Rate(Group):
    """A rate measured by the stats model over past sessions; null without that model."""

    value: Probability | None = Field(description="measured rate, fraction 0-1")
    window: str | None = Field(description="the sessions measured, first..last date")
    regime: str = Field(description="India VIX regime the rate was measured in (ALL: pooled)")
    samples: int = Field(ge=0, description="sessions measured")


class Stamps(Contract):
    """What the gateway adds to an engine's block data to make its section."""

    as_of: Annotated[str, Field(pattern=TIME)] = Field(
        description="UTC time (ms) of the bar's close this block reflects"
    )
    session_date: IsoDate
    kind: Literal["daily", "intraday"]
    computed_at: Annotated[str, Field(pattern=TIME)] = Field(
        description="UTC time (ms) the engine computed the block"
    )
    freshness_limit_s: int = Field(ge=0, description="seconds of grace after newer data is due")
    stale: bool = Field(description="newer data was due longer ago than freshness_limit_s")
    models: list[ModelRef] = Field(description="model versions the block used")
    degraded: list[str] = Field(description="why any value fell back to a heuristic")
