"""Run-time enforcement of the document contract (shared.document): a block enters the
document only if its section validates, every number in it is finite and it is not larger
than ``AEGIS_BLOCK_MAX_BYTES`` as JSON. Pure: the consumer refuses (dead-letters and counts)
what this rejects, so a block that breaks the contract is never shown."""

from __future__ import annotations

import math
from typing import Any

import orjson
from pydantic import ValidationError

from services.gateway.assembler import section
from services.gateway.guard import Rejection
from shared.document import validate_section
from shared.schemas import SignalBlock

MAX_ERRORS_NAMED = 3


def _non_finite(value: Any, path: str) -> str | None:
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
        found = _non_finite(item, f"{path}.{key}")
        if found is not None:
            return found
    return None


def _validation_summary(exc: ValidationError) -> str:
    errors = exc.errors()
    named = "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors[:MAX_ERRORS_NAMED]
    )
    more = len(errors) - MAX_ERRORS_NAMED
    return named + (f" (+{more} more)" if more > 0 else "")


def contract_rejection(block: SignalBlock, max_bytes: int, now_ms: int) -> Rejection | None:
    """None when ``block`` may be shown, else why not (reason ``contract``). Call it on a
    block the guard admitted (its stamps need the calendar to place it)."""
    try:
        size = len(orjson.dumps(block.data))
    except orjson.JSONEncodeError as exc:  # bytes, integer keys, 128-bit integers
        return Rejection("contract", f"{block.engine} block data is not JSON: {exc}")
    if size > max_bytes:
        return Rejection(
            "contract", f"{block.engine} block is {size} bytes as JSON (limit {max_bytes})"
        )
    where = _non_finite(block.data, block.engine)
    if where is not None:
        return Rejection("contract", f"{where} is not a finite number")
    try:
        validate_section(block.engine, section(block, now_ms))
    except ValidationError as exc:
        return Rejection("contract", f"{block.engine}: {_validation_summary(exc)}")
    return None
