"""The document contract (shared/document.py) is declared once and catches a broken section."""

from __future__ import annotations

import pydantic
import pytest

from services.gateway.assembler import DocumentState
from shared.document import ENGINES, SECTIONS, document_json_schema, validate_section
from tests.block_factory import make_block


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
    with pytest.raises(pydantic.ValidationError, match="safe_range"):
        validate_section("seller", broken)
    bad_provenance = {**section, "trap": {**section["trap"], "provenance": {"source": "guess"}}}
    with pytest.raises(pydantic.ValidationError, match=r"trap\.provenance\.source"):
        validate_section("seller", bad_provenance)
