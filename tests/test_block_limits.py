"""The block limits' checks (pure): every NaN and infinity found wherever it sits, nothing
else refused, including integers whose bytes look like a non-finite float to the screen."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from shared.contract.block_limits import data_limit_problem

LIMIT = 10_000


@dataclass
class Point:
    x: float


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"a": math.nan}, "seller.a"),
        ({"a": [Point(1.0), Point(math.inf)]}, "seller.a.1.x"),  # as a reader decodes it
        ({"a": {"b": [1.0, math.inf]}}, "seller.a.b.1"),
        ({"a": [(0.5, -math.inf)]}, "seller.a.0.1"),
    ],
)
def test_a_non_finite_number_is_named_by_its_path(data: dict, where: str) -> None:
    assert data_limit_problem(data, LIMIT, "seller") == f"{where} is not a finite number"


@pytest.mark.parametrize(
    "data",
    [
        {"a": 1e308, "b": -1e308, "c": 0.0, "d": None, "e": "nan"},
        {"epoch_ms": 0xCB7FF000},  # msgpack: 0xce cb 7f f0 00, the screen's pattern
    ],
)
def test_finite_data_within_the_size_is_kept(data: dict) -> None:
    assert data_limit_problem(data, LIMIT, "seller") is None


def test_size_is_counted_as_json() -> None:
    problem = data_limit_problem({"a": "x" * LIMIT}, LIMIT, "buyer")
    assert problem == f"buyer block is {LIMIT + 8} bytes as JSON (limit {LIMIT})"


def test_data_that_is_not_json_is_refused() -> None:
    problem = data_limit_problem({1: 2.0}, LIMIT, "market")
    assert problem is not None and problem.startswith("market block data is not JSON")
