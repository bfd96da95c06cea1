"""What every part of the document contract is made of: the frozen, closed struct base (an
unknown field is refused), the units (each type says its unit; a field's own description
says what it means), a signal group (a value with its provenance), the block stamps, and
the groups several engines share.

msgspec structs: the engines build them, msgspec encodes them (a struct writes its fields in
declaration order, a field left ``UNSET`` not at all), and the gateway decodes a block's data
straight into them, which checks every type, range and pattern in one pass (no coercion:
"25000" is not a number, 3.0 is not an integer; an int is a float)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from shared.contract.schemas import ModelRef, Provenance

__all__ = ["UNSET", "Contract", "Group", "ModelRef", "Provenance", "Stamps", "UnsetType"]

DATE = r"^\d{4}-\d{2}-\d{2}$"
TIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"


class Contract(Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Frozen and closed: an unknown field is refused. A field typed ``... | UnsetType`` may
    be absent (left out when ``UNSET``); every other field is always written."""


def doc(text: str) -> Any:
    """A field's meaning (its type says its unit)."""
    return Meta(description=text)


# Units ----------------------------------------------------------------------------------------
Points = Annotated[float, Meta(description="index points")]
Level = Annotated[float, Meta(gt=0, description="index level, points")]
Probability = Annotated[float, Meta(ge=0, le=1, description="probability")]
Share = Annotated[float, Meta(ge=0, le=1, description="fraction")]
Percentile = Annotated[float, Meta(ge=0, le=1, description="percentile, as a fraction")]
Percent = Annotated[float, Meta(description="percent (1.5 = 1.5 %)")]
Vix = Annotated[float, Meta(gt=0, description="India VIX, annualised percent")]
Vol = Annotated[float, Meta(ge=0, description="annualised volatility, fraction (0.15 = 15 %)")]
VolSpread = Annotated[
    float, Meta(description="annualised volatility difference, fraction (0.01 = 1 vol point)")
]
Units = Annotated[float, Meta(description="option units (contracts x lot size)")]
Contracts = Annotated[int, Meta(description="contracts")]
Rupees = Annotated[float, Meta(description="rupees per 1 % move of spot")]
CalendarDays = Annotated[int, Meta(ge=0, description="calendar days; the expiry day counts as 0")]
Count = Annotated[int, Meta(ge=0)]
NonNegative = Annotated[float, Meta(ge=0)]
IsoDate = Annotated[str, Meta(pattern=DATE, description="ISO date, YYYY-MM-DD (IST session)")]
Time = Annotated[
    str, Meta(pattern=TIME, description="ISO 8601 time with its offset (IST from the engines)")
]
Reason = Annotated[str, Meta(description="why the value beside it is missing or differs")]


class Group(Contract, frozen=True):
    """A signal group: its values and where they came from."""

    provenance: Provenance


class Selection(Contract, frozen=True):
    """The trainer's validation choice between the seller's volatility core and the signal's
    baseline (docs/MODELS.md); null when no seller model is loaded."""

    live: Annotated[Literal["model", "baseline"], doc("which one the value comes from")]
    baseline: str
    metric: Annotated[str, doc("the validation metric compared")]
    model_score: float
    baseline_score: float
    skill: Annotated[
        float, doc("1 - model_score / baseline_score where lower is better, else the difference")
    ]
    samples: Annotated[Count, doc("validation sessions")]


class Rate(Group, frozen=True):
    """A rate measured by the stats model over past sessions; null without that model."""

    value: Annotated[Probability | None, doc("measured rate, fraction 0-1")]
    window: Annotated[str | None, doc("the sessions measured, first..last date")]
    regime: Annotated[str, doc("India VIX regime the rate was measured in (ALL: pooled)")]
    samples: Annotated[Count, doc("sessions measured")]


class Stamps(Contract, frozen=True):
    """What the gateway adds to an engine's block data to make its section."""

    as_of: Annotated[
        str, Meta(pattern=TIME), doc("UTC time (ms) of the bar's close this block reflects")
    ]
    session_date: IsoDate
    kind: Literal["daily", "intraday"]
    computed_at: Annotated[
        str, Meta(pattern=TIME), doc("UTC time (ms) the engine computed the block")
    ]
    freshness_limit_s: Annotated[Count, doc("seconds of grace after newer data is due")]
    stale: Annotated[bool, doc("newer data was due longer ago than freshness_limit_s")]
    models: Annotated[list[ModelRef], doc("model versions the block used")]
    degraded: Annotated[list[str], doc("why any value fell back to a heuristic")]


def ordered(lower: float | None, upper: float | None, what: str) -> None:
    """lower <= upper, else ValueError (in ``__post_init__``: decoding refuses the struct
    with the message, at its path)."""
    if lower is not None and upper is not None and lower > upper:
        raise ValueError(f"{what}: lower {lower} is above upper {upper}")
