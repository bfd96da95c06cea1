"""Run-time enforcement of the document contract (shared.contract.document): a block enters the
document only if it keeps the block limits (JSON size, finite numbers: shared.contract.block_limits,
the engines' own check) and its data is the engine's struct of the contract (every field known,
typed and in range). Pure: the consumer refuses (dead-letters and counts) what this rejects,
so a block that breaks the contract is never shown."""

from __future__ import annotations

import msgspec

from services.gateway.guard import Rejection
from shared.contract.block_limits import data_limit_problem
from shared.contract.document import BLOCK_DATA, problem_text
from shared.contract.schemas import SignalBlock


def contract_rejection(block: SignalBlock, max_bytes: int) -> Rejection | None:
    """None when ``block`` may be shown, else why not (reason ``contract``)."""
    problem = data_limit_problem(block.data, max_bytes, block.engine)
    if problem is not None:
        return Rejection("contract", problem)
    try:
        msgspec.convert(block.data, BLOCK_DATA[block.engine])
    except msgspec.ValidationError as exc:
        return Rejection("contract", f"{block.engine}: {problem_text(exc)}")
    return None
