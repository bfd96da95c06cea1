"""A block's stamps from its provenances: the models used and the heuristic paths."""

from __future__ import annotations

from typing import Any

from shared.models.context import provenance_summary, walk_provenance
from tests.block_factory import all_blocks, dump_provenance, heuristic


def _by_walk(data: Any) -> tuple[set[str], list[str]]:
    used, degraded = set(), []
    for path, prov in walk_provenance(data):
        if prov.get("source") in ("model", "climatology"):
            used.add(prov["model"])
        elif prov.get("source") == "heuristic":
            degraded.append(f"{path}: {prov.get('note')}")
    return used, degraded


def test_the_summary_names_models_and_heuristic_paths_in_document_order() -> None:
    data = {
        "a": {"provenance": {"source": "model", "model": "m1", "version": "1"}},
        "b": [
            {"x": 1.0, "provenance": dump_provenance(heuristic("no model"))},
            [{"deep": {"provenance": {"source": "heuristic", "note": "still none"}}}],
        ],
        "c": {"provenance": {"source": "climatology", "model": "m2"}, "n": {"v": (1, 2)}},
        "provenance": {"source": "formula", "formula": "f"},
    }
    used, degraded = provenance_summary(data)
    assert used == {"m1", "m2"}
    assert degraded == ["b[0]: no model", "b[1][0].deep: still none"]


def test_the_summary_agrees_with_the_full_walk_on_document_blocks() -> None:
    for block in all_blocks(degraded=("x",)):
        assert provenance_summary(block.data) == _by_walk(block.data)
        assert walk_provenance(block.data)  # every block carries provenances
