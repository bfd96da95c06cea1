"""A block's stamps from its provenances: the models used and the heuristic paths, found by
walking the data struct's group fields only."""

from __future__ import annotations

from typing import Any

import msgspec

from shared.contract.blocks import provenance_summary, walk_provenance
from shared.contract.document.base import Contract, Group
from shared.contract.schemas import Provenance
from tests.block_factory import direction_data, heuristic, seller_data


class Leaf(Group, frozen=True):
    x: float = 0.0


class Branch(Contract, frozen=True):
    deep: Leaf | None
    rows: list[float]


class Tree(Group, frozen=True):
    a: Leaf
    b: list[Leaf | Branch]
    c: Branch
    n: tuple[int, int] = (1, 2)


def test_the_summary_names_models_and_heuristic_paths_in_document_order() -> None:
    data = Tree(
        a=Leaf(provenance=Provenance(source="model", model="m1", version="1")),
        b=[
            Leaf(x=1.0, provenance=heuristic("no model")),
            Branch(deep=Leaf(provenance=heuristic("still none")), rows=[1.0]),
        ],
        c=Branch(deep=Leaf(provenance=Provenance(source="climatology", model="m2")), rows=[]),
        provenance=Provenance(source="formula", formula="f"),
    )
    used, degraded = provenance_summary(data)
    assert used == {"m1", "m2"}
    assert degraded == ["b[0]: no model", "b[1].deep: still none"]


def _dict_walk(value: Any, path: str, found: list[tuple[str, dict[str, Any]]]) -> None:
    """Every provenance of decoded data, by looking at every value."""
    if isinstance(value, dict):
        if isinstance(value.get("provenance"), dict):
            found.append((path, value["provenance"]))
        for key, item in value.items():
            if key != "provenance":
                _dict_walk(item, f"{path}.{key}" if path else key, found)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _dict_walk(item, f"{path}[{i}]", found)


def test_the_walk_of_group_fields_finds_what_looking_everywhere_finds() -> None:
    for data in (
        direction_data(25_600.0, heuristic_today=True),
        seller_data(25_600.0),
    ):
        found: list[tuple[str, dict[str, Any]]] = []
        _dict_walk(msgspec.to_builtins(data), "", found)
        walked = [(path, msgspec.to_builtins(prov)) for path, prov in walk_provenance(data)]
        assert walked == found and len(found) > 5
    used, degraded = provenance_summary(direction_data(25_600.0, heuristic_today=True))
    assert used == {"direction"} and degraded == ["today: model not loaded"]
