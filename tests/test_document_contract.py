"""The document contract (shared/contract/document/) is declared once and catches a broken
section."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import msgspec
import pytest

from services.gateway.assembler import DocumentState
from shared.contract.document import (
    ENGINES,
    SECTIONS,
    document_json_schema,
    problem_text,
    validate_section,
)
from shared.contract.document.reference import DOCUMENT_MD, contract_structs, tag_of, updated
from tests.block_factory import make_block

STATIC = Path(__file__).resolve().parent.parent / "services" / "gateway" / "static"


def test_every_engine_has_a_section_contract_and_the_schema_names_them() -> None:
    assert set(ENGINES) == set(SECTIONS)
    assert set(ENGINES) <= set(document_json_schema()["properties"])


def test_a_section_missing_a_documented_group_is_refused_with_its_name() -> None:
    state = DocumentState()
    block = make_block("seller")
    state.offer(block, block.as_of * 1000)
    section = state.document()["seller"]
    validate_section("seller", section)
    broken = {k: v for k, v in section.items() if k != "safe_range"}
    with pytest.raises(msgspec.ValidationError, match="missing required field `safe_range`"):
        validate_section("seller", broken)
    bad_provenance = {**section, "trap": {**section["trap"], "provenance": {"source": "guess"}}}
    with pytest.raises(msgspec.ValidationError, match=r"trap\.provenance\.source"):
        validate_section("seller", bad_provenance)


def test_the_field_reference_in_document_md_is_the_contracts() -> None:
    text = DOCUMENT_MD.read_text()
    assert updated(text) == text, (
        "docs/DOCUMENT.md is out of date: python -m shared.contract.document"
    )


# names the dashboard reads from the other APIs (history, series, scorecard, alerts, session,
# websocket messages) and from comments: everything else it names is the document's
OTHER_APIS = {
    "as_of_ist", "auth_required", "breakout_lower", "breakout_upper", "brier_lognormal",
    "brier_observed_rate", "by_regime", "call_wall", "close_in_range", "epoch_s", "event_rate",
    "expiry_close", "first_sequence", "hit_rate", "in_sample_left_out",
    "inside_where_straddle_scored", "pcr_oi", "put_wall", "range_lower", "range_upper",
    "safe_lower", "safe_upper", "spearman_vix", "straddle_band_inside", "straddle_band_scored",
    "straddle_move", "stream_id", "vix_band_inside", "vix_band_scored", "vix_regime",
}  # fmt: skip


def literal_values(annotation: Any) -> set[str]:
    found = {str(a) for a in get_args(annotation)} if get_origin(annotation) is Literal else set()
    return found.union(*(literal_values(a) for a in get_args(annotation)))


def test_every_field_name_the_dashboard_reads_is_in_the_contract() -> None:
    """The snake_case names in the dashboard's scripts: each a field (or a label value) of
    the contract, or one of the other APIs' (a renamed or invented field fails here)."""
    fields: set[str] = set()
    for struct in contract_structs():
        for field in msgspec.structs.fields(struct):
            fields |= {field.name} | literal_values(field.type)
        fields |= set(map(str, tag_of(struct) or ()))
    scripts = "".join(p.read_text() for p in STATIC.glob("*.js"))
    named = set(re.findall(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b", scripts))
    assert named - fields - OTHER_APIS == set()
    assert OTHER_APIS - named == set(), "a name no script reads any more: drop it here"


def test_the_contract_refuses_what_the_engines_never_send() -> None:
    """Closed, strict and ranged: an unknown field, a number given as text, an integer given
    as a float, a NaN, a probability above 1, a range upside down."""
    state = DocumentState()
    block = make_block("seller")
    state.offer(block, block.as_of * 1000)
    good = state.document()["seller"]
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("trap", {"band": 1}, "trap.band: unknown field, not in the contract"),
        ("trap", {"score": "0.3"}, "trap.score: Expected `float | null`, got `str`"),
        ("safe_range", {"days_to_expiry": 3.0}, "days_to_expiry: Expected `int`, got `float`"),
        ("trap", {"score": math.nan}, "trap.score: Expected `float` >= 0.0"),
        ("trap", {"score": 1.2}, "trap.score: Expected `float` <= 1.0"),
        ("safe_range", {"lower": 26e3, "upper": 25e3}, "lower 26000.0 is above upper 25000.0"),
    ]
    for group, change, message in cases:
        with pytest.raises(msgspec.ValidationError) as refused:
            validate_section("seller", {**good, group: {**good[group], **change}})
        assert message in problem_text(refused.value)
