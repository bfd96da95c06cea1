"""The output document's contract (aegismatrix.json), declared once as msgspec structs: every
engine's section typed to the field, with its unit and range, frozen and closed (an unknown
field is refused). The engines build their block data as these structs and publish them
encoded from the struct; the gateway decodes every block's data into them before it is shown
(services/gateway/contract_check.py), serves their JSON Schema as GET /api/v1/schema and in
its OpenAPI description, and docs/DOCUMENT.md's field reference is generated from them
(``python -m shared.contract.document``). Provenance and model references are the bus
schemas' own."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, cast, get_args

import msgspec
from msgspec import Meta

from shared.contract.document.base import (
    UNSET,
    Contract,
    Count,
    Stamps,
    UnsetType,
    doc,
)
from shared.contract.document.buyer import BuyerData
from shared.contract.document.direction import DirectionData
from shared.contract.document.market import MarketData
from shared.contract.document.seller import SellerData
from shared.contract.schemas import Engine

Status = Literal["ok", "degraded", "down"]
BlockData = MarketData | DirectionData | SellerData | BuyerData


class ModelSummary(Contract, frozen=True):
    name: str
    version: str | None
    trained_at: str | None


class ServiceHealth(Contract, frozen=True):
    status: Status
    replicas: Count
    models: list[ModelSummary]
    degraded_reasons: list[str]
    last_message_at: Annotated[str | None, doc("null with the event clock")]
    lag: Annotated[int | None, doc("entries behind; null with the event clock")]


class Health(Contract, frozen=True):
    status: Status
    engines: dict[str, ServiceHealth]


class ClockSection(Contract, frozen=True):
    """What stale flags and ages are judged against (shared.market.clock)."""

    mode: Literal["live", "replay", "event"]
    now: Annotated[str, doc("the clock's time when this document or message was made")]
    rate: Annotated[float, doc("clock seconds per wall second from now on (speed, 1, 0)")]
    speed: Annotated[float | None, doc("replay speed; null live")] = None
    replay_date: Annotated[str | None, doc("IST date of the replay clock")] = None
    source: str | None = None
    finished: Annotated[bool | None, doc("the replay has published everything")] = None
    market_open: Annotated[bool | None, doc("the NSE session is open at ``now``")] = None
    next_open: Annotated[str | None, doc("when the session next opens; null if open")] = None


def _section(data: type[Contract]) -> type[Contract]:
    """An engine's section: its block data followed by the stamps the gateway adds."""
    fields = [(f.name, f.type) for f in msgspec.structs.fields(Stamps)]
    section = msgspec.defstruct(
        data.__name__.removesuffix("Data"),
        fields,
        bases=(data,),
        module=__name__,
        kw_only=True,
        frozen=True,
        forbid_unknown_fields=True,
        namespace={"__doc__": f"The {data.__name__} of a block, with its stamps."},
    )
    return cast(type[Contract], section)


ENGINES: tuple[Engine, ...] = get_args(Engine)
BLOCK_DATA: dict[Engine, type[Contract]] = {
    "market": MarketData,
    "direction": DirectionData,
    "seller": SellerData,
    "buyer": BuyerData,
}
SECTIONS: dict[Engine, type[Contract]] = {e: _section(d) for e, d in BLOCK_DATA.items()}

Document: type[msgspec.Struct] = msgspec.defstruct(
    "Document",
    [
        ("schema_version", Literal[1]),
        ("generated_at", str | None),
        (
            "epoch",
            Annotated[int, doc("the sequence counts within this; a new one: a restart")],
            0,
        ),
        ("sequence", Annotated[int, Meta(description="increases by one per change")]),
        *((engine, SECTIONS[engine] | None) for engine in ENGINES),
        ("health", Health),
        ("clock", ClockSection | None | UnsetType, UNSET),
    ],
    module=__name__,
    kw_only=True,
    frozen=True,
    forbid_unknown_fields=True,
    namespace={
        "__doc__": "aegismatrix.json, schema_version 1. A section is null until its engine's "
        "first block."
    },
)


_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<name>[^`]*)`$")


def problem_text(exc: msgspec.ValidationError) -> str:
    """msgspec's "Expected `int`, got `float` - at `$.safe_range.days_to_expiry`" as
    "safe_range.days_to_expiry: Expected `int`, got `float`"; an unknown field as
    "trap.band: unknown field, not in the contract"."""
    found = _AT.match(str(exc))
    assert found is not None  # the pattern matches any text
    message, path = found["message"], (found["path"] or "").removeprefix(".")
    unknown = _UNKNOWN.match(message)
    if unknown is not None:
        path = f"{path}.{unknown['name']}" if path else unknown["name"]
        message = "unknown field, not in the contract"
    return f"{path}: {message}" if path else message


def validate_section(engine: Engine, section: dict[str, Any]) -> Contract:
    """``section`` (a block's data with its stamps, as the document holds it) checked against
    the contract; raises msgspec.ValidationError naming the first field that breaks it."""
    return msgspec.convert(section, SECTIONS[engine])


def schema_components(ref_template: str) -> dict[str, Any]:
    """The JSON Schema of every struct the document holds, by name (``ref_template`` places
    the references: ``#/$defs/{name}``, or OpenAPI's ``#/components/schemas/{name}``)."""
    _, components = msgspec.json.schema_components([Document], ref_template=ref_template)
    return components


def document_json_schema() -> dict[str, Any]:
    """The document's JSON Schema: the document's object, every other struct in ``$defs``."""
    components = schema_components("#/$defs/{name}")
    return {**components.pop("Document"), "$defs": components}
