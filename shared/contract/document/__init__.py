"""The output document's contract (aegismatrix.json), declared once: every engine's section
typed to the field, with its unit and range, strict, frozen and closed (an unknown field is
refused). The gateway validates every block against it before it is shown
(services/gateway/contract_check.py), serves it as GET /api/v1/schema and in its OpenAPI
description, and docs/DOCUMENT.md's field reference is generated from it
(``python -m shared.contract.document``). Provenance and model references are the bus
schemas' own."""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import Field

from shared.contract.document.base import Contract, Stamps
from shared.contract.document.buyer import Buyer, BuyerData
from shared.contract.document.direction import Direction, DirectionData
from shared.contract.document.market import Market, MarketData
from shared.contract.document.seller import Seller, SellerData
from shared.contract.schemas import Engine

Status = Literal["ok", "degraded", "down"]


class ModelSummary(Contract):
    name: str
    version: str | None
    trained_at: str | None


class ServiceHealth(Contract):
    status: Status
    replicas: int = Field(ge=0)
    models: list[ModelSummary]
    degraded_reasons: list[str]
    last_message_at: str | None = Field(None, description="null with the event clock")
    lag: int | None = Field(None, description="entries behind; null with the event clock")


class Health(Contract):
    status: Status
    engines: dict[str, ServiceHealth]


class ClockSection(Contract):
    """What stale flags and ages are judged against (shared.market.clock)."""

    mode: Literal["live", "replay", "event"]
    now: str = Field(description="the clock's time when this document or message was made")
    rate: float = Field(description="clock seconds per wall second from now on (speed, 1, 0)")
    speed: float | None = Field(None, description="replay speed; null live")
    replay_date: str | None = Field(None, description="IST date of the replay clock")
    source: str | None = None
    finished: bool | None = Field(None, description="the replay has published everything")
    market_open: bool | None = Field(None, description="the NSE session is open at ``now``")
    next_open: str | None = Field(None, description="when the session next opens; null if open")


class Document(Contract):
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
BLOCK_DATA: dict[Engine, type[Contract]] = {
    "market": MarketData,
    "direction": DirectionData,
    "seller": SellerData,
    "buyer": BuyerData,
}


def validate_section(engine: Engine, section: dict[str, Any]) -> Stamps:
    """``section`` (a block's data with its stamps, as the document holds it) checked against
    the contract; raises pydantic.ValidationError naming every field that breaks it."""
    return SECTIONS[engine].model_validate(section)


def document_json_schema() -> dict[str, Any]:
    return Document.model_json_schema()
