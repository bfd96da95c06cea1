"""Run-time enforcement of the document contract (shared.contract.document): a block enters the
document only if its data keeps the block limits (finite numbers, JSON size:
shared.contract.block_limits, the engines' own check) and decodes into the engine's contract
struct (every field known, typed and in range, lower <= upper), in one msgspec pass from its
msgpack. Pure: the consumer refuses (dead-letters and counts) what this rejects, so a block
that breaks the contract is never shown."""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from services.gateway.guard import Rejection
from shared.contract.block_limits import non_finite_problem, size_problem
from shared.contract.document import BLOCK_DATA, problem_text
from shared.contract.schemas import SignalBlock

_DECODERS: dict[str, msgspec.msgpack.Decoder[Any]] = {
    engine: msgspec.msgpack.Decoder(struct) for engine, struct in BLOCK_DATA.items()
}


def contract_checked(head: SignalBlock, data: bytes, max_bytes: int) -> SignalBlock | Rejection:
    """The block of ``head`` (its header) with its data, ``data`` being the data's msgpack,
    decoded into the engine's contract struct and kept as its map for the document; or why
    it may not be shown (reason ``contract``)."""
    engine = head.engine
    problem = non_finite_problem(data, engine)
    if problem is not None:
        return Rejection("contract", problem)
    try:
        typed = _DECODERS[engine].decode(data)
    except msgspec.ValidationError as exc:
        return Rejection(
            "contract", _too_large(data, max_bytes, engine) or f"{engine}: {problem_text(exc)}"
        )
    shown = msgspec.to_builtins(typed)
    problem = size_problem(data, max_bytes, engine, lambda: orjson.dumps(shown))
    if problem is not None:
        return Rejection("contract", problem)
    return head.model_copy(update={"data": shown})


def _too_large(data: bytes, max_bytes: int, engine: str) -> str | None:
    """The size problem of data that breaks the contract (the size is the reason given
    first, as for data that keeps it); None when it is no JSON at all."""
    try:
        return size_problem(
            data, max_bytes, engine, lambda: orjson.dumps(msgspec.msgpack.decode(data))
        )
    except orjson.JSONEncodeError:  # integer keys, bytes: the contract's reason says why
        return None
