"""The limits every block's data keeps, checked on its msgpack by the engine that publishes it
and again by the gateway that shows it: finite numbers only (JSON has no NaN or infinity:
encoders write null, and the document would break its own schema) and at most
``AEGIS_BLOCK_MAX_BYTES`` as JSON. Pure."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import msgspec

# msgpack writes every float as a float 64 (0xcb, then big-endian IEEE 754): NaN and the
# infinities are the ones whose 11 exponent bits are all set. The same three bytes inside an
# integer's or a string's bytes only cost the exact walk below.
_NON_FINITE_FLOAT64 = re.compile(rb"\xcb[\x7f\xff][\xf0-\xff]")


def json_size_bound(packed_size: int) -> int:
    """The most bytes of JSON a msgpack value of ``packed_size`` bytes can become (as the
    encoders write it): 6 x msgpack - 1. Per scalar: a 1-byte false is 5 characters, a
    string byte at most a 6-character escape (plus 2 quotes against at least 1 header byte),
    a 9-byte float or integer at most 24 characters; an empty array or map is 2 against 1;
    a non-empty one adds a separator per item (and a colon per key) and its brackets against
    its header and items of at least 1 byte each, which keeps it within 6 x msgpack - 5
    (tests/test_block_limits.py tries the worst cases)."""
    return 6 * packed_size - 1


def non_finite_path(value: Any, path: str) -> str | None:
    """The path of the first NaN or infinity in ``value``, None when there is none."""
    if isinstance(value, float):
        return None if math.isfinite(value) else path
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = non_finite_path(item, f"{path}.{key}")
        if found is not None:
            return found
    return None


def non_finite_problem(packed: bytes, name: str) -> str | None:
    """Where block data called ``name``, ``packed`` as msgpack, holds a NaN or an infinity;
    None when it holds none. The screen finds none in most blocks; otherwise the data, as a
    reader decodes it, is walked for the path."""
    if _NON_FINITE_FLOAT64.search(packed) is None:
        return None
    where = non_finite_path(msgspec.msgpack.decode(packed), name)
    return None if where is None else f"{where} is not a finite number"


def size_problem(
    packed: bytes, max_bytes: int, name: str, as_json: Callable[[], bytes]
) -> str | None:
    """Why block data called ``name``, ``packed`` as msgpack, is too large as JSON; None when
    it is not. ``as_json`` (the data's JSON) is called only when ``json_size_bound`` does not
    already keep the size within ``max_bytes``."""
    if json_size_bound(len(packed)) <= max_bytes:
        return None
    size = len(as_json())
    return (
        None if size <= max_bytes else f"{name} block is {size} bytes as JSON (limit {max_bytes})"
    )


def packed_limit_problem(
    packed: bytes, max_bytes: int, name: str, as_json: Callable[[], bytes]
) -> str | None:
    """Why block data called ``name``, ``packed`` as msgpack, breaks the limits (a NaN or an
    infinity, more than ``max_bytes`` of JSON); None when it keeps them."""
    return non_finite_problem(packed, name) or size_problem(packed, max_bytes, name, as_json)
