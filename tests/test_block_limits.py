"""The block limits' checks on a block's msgpack (pure): every NaN and infinity found wherever
it sits, nothing else refused (including integers whose bytes look like a non-finite float to
the screen), the size counted as JSON, and the bound that spares counting it never below the
JSON a msgpack value becomes."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

import msgspec
import orjson
import pytest

from shared.contract.block_limits import json_size_bound, packed_limit_problem

LIMIT = 10_000


@dataclass
class Point:
    x: float


def problem(data: Any, limit: int = LIMIT, name: str = "seller") -> str | None:
    packed = msgspec.msgpack.encode(data)
    return packed_limit_problem(
        packed, limit, name, lambda: orjson.dumps(msgspec.msgpack.decode(packed))
    )


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
    assert problem(data) == f"{where} is not a finite number"


@pytest.mark.parametrize(
    "data",
    [
        {"a": 1e308, "b": -1e308, "c": 0.0, "d": None, "e": "nan"},
        {"epoch_ms": 0xCB7FF000},  # msgpack: 0xce cb 7f f0 00, the screen's pattern
    ],
)
def test_finite_data_within_the_size_is_kept(data: dict) -> None:
    assert problem(data) is None


def test_size_is_counted_as_json_when_the_bound_does_not_settle_it() -> None:
    assert problem({"a": "x" * LIMIT}, name="buyer") == (
        f"buyer block is {LIMIT + 8} bytes as JSON (limit {LIMIT})"
    )
    almost = {"a": "x" * (LIMIT - 8)}
    assert json_size_bound(len(msgspec.msgpack.encode(almost))) > LIMIT
    assert problem(almost) is None  # counted: exactly the limit


def test_the_bound_alone_keeps_a_small_block_without_its_json() -> None:
    def never() -> bytes:
        raise AssertionError("counted")

    assert packed_limit_problem(msgspec.msgpack.encode({"a": 1.5}), LIMIT, "x", never) is None


WORST: list[Any] = [
    False,
    None,
    True,
    -32,
    127,
    255,
    -128,
    -32768,
    2**64 - 1,
    -(2**63),
    -2.2250738585072014e-308,
    -1.7976931348623157e308,
    "",
    "\x01",
    "\x00" * 40,
    '"\\' * 20,
    [],
    {},
    [[]],
    [{}, [], {}],
    [False] * 20,
    {"": False},
    {"\x01": [False, None, {}]},
]


def _random_value(rng: random.Random, depth: int) -> Any:
    kinds = ["scalar"] * 3 + (["list", "map"] if depth < 4 else [])
    kind = rng.choice(kinds)
    if kind == "list":
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(0, 5))]
    if kind == "map":
        return {
            "".join(rng.choice('a\x01\x1f"\\é') for _ in range(rng.randrange(0, 4))): (
                _random_value(rng, depth + 1)
            )
            for _ in range(rng.randrange(0, 5))
        }
    return rng.choice(
        [
            False,
            None,
            rng.randrange(-(2**63), 2**64),
            rng.choice([-1, 1]) * rng.random() * 10 ** rng.randrange(-308, 308),
            "".join(rng.choice('\x00\x1fa"\\') for _ in range(rng.randrange(0, 6))),
        ]
    )


def test_json_never_exceeds_the_bound() -> None:
    rng = random.Random(7)
    values = WORST + [{"k": v} for v in WORST] + [_random_value(rng, 0) for _ in range(3000)]
    for value in values:
        packed = msgspec.msgpack.encode(value)
        for encoded in (orjson.dumps(value), msgspec.json.encode(value)):
            assert len(encoded) <= json_size_bound(len(packed)), (value, encoded)
