"""The limits every block's data keeps, checked by the engine that publishes it and again by
the gateway that shows it: at most ``AEGIS_BLOCK_MAX_BYTES`` as JSON, and finite numbers only
(JSON has no NaN or infinity: encoders write null, and the document would break its own
schema). Pure."""

from __future__ import annotations

import math
import re
from typing import Any

import msgspec
import orjson

# msgpack writes every float as a float 64 (0xcb, then big-endian IEEE 754): NaN and the
# infinities are the ones whose 11 exponent bits are all set. The same three bytes inside an
# integer's or a binary's bytes only cost the exact walk below.
_NON_FINITE_FLOAT64 = re.compile(rb"\xcb[\x7f\xff][\xf0-\xff]")
_ENCODER = msgspec.msgpack.Encoder()


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


def _non_finite_in(data: Any, name: str) -> str | None:
    """The path of a NaN or infinity in ``data``. The screen (~6x cheaper than the walk)
    finds none in most blocks; otherwise the data as msgpack carries it (dicts and lists, as
    a reader decodes it) is walked."""
    try:
        encoded = _ENCODER.encode(data)
    except (TypeError, msgspec.EncodeError):  # a type msgpack lacks: walk it as it is
        return non_finite_path(data, name)
    if _NON_FINITE_FLOAT64.search(encoded) is None:
        return None
    return non_finite_path(msgspec.msgpack.decode(encoded), name)


def data_limit_problem(data: Any, max_bytes: int, name: str) -> str | None:
    """Why block data called ``name`` breaks the limits, None when it keeps them."""
    try:
        size = len(orjson.dumps(data))
    except orjson.JSONEncodeError as exc:  # bytes, integer keys, 128-bit integers
        return f"{name} block data is not JSON: {exc}"
    if size > max_bytes:
        return f"{name} block is {size} bytes as JSON (limit {max_bytes})"
    where = _non_finite_in(data, name)
    return None if where is None else f"{where} is not a finite number"
