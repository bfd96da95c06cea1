"""Run-time enforcement of the document contract (shared.contract.document): a block enters the
document only if it keeps the block limits (JSON size, finite numbers: shared.contract.block_limits,
the engines' own check) and its section validates (every field known, typed and in range).
Pure: the consumer refuses (dead-letters and counts) what this rejects, so a block that
breaks the contract is never shown."""

from __future__ import annotations

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from services.gateway.assembler import section
from services.gateway.guard import Rejection
from shared.contract.block_limits import data_limit_problem
from shared.contract.document import validate_section
from shared.contract.schemas import SignalBlock

MAX_ERRORS_NAMED = 3


def _message(error: ErrorDetails) -> str:
    where = ".".join(str(p) for p in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown field, not in the contract"
    return f"{where}: {error['msg']}"


def _validation_summary(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    named = "; ".join(_message(e) for e in errors[:MAX_ERRORS_NAMED])
    more = len(errors) - MAX_ERRORS_NAMED
    return named + (f" (+{more} more)" if more > 0 else "")


def contract_rejection(block: SignalBlock, max_bytes: int, now_ms: int) -> Rejection | None:
    """None when ``block`` may be shown, else why not (reason ``contract``). Call it on a
    block the guard admitted (its stamps need the calendar to place it)."""
    problem = data_limit_problem(block.data, max_bytes, block.engine)
    if problem is not None:
        return Rejection("contract", problem)
    try:
        validate_section(block.engine, section(block, now_ms))
    except ValidationError as exc:
        return Rejection("contract", f"{block.engine}: {_validation_summary(exc)}")
    return None
