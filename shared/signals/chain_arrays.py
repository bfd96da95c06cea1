"""A chain's quotes as numpy columns, built once per quotes tuple: every chain analytic of
one block reads the same arrays instead of walking the pydantic quotes again."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

import numpy as np

from shared.schemas import OptionQuote

CACHE_SIZE = 32
COLUMNS = (
    "strike",
    "ce_ltp",
    "pe_ltp",
    "ce_oi",
    "pe_oi",
    "ce_volume",
    "pe_volume",
    "ce_iv",
    "pe_iv",
    "ce_oi_change",
    "pe_oi_change",
)


@dataclass
class ChainArrays:
    """Columns sorted by strike; None is NaN (LTP and IV of 0 too: "no value")."""

    strike: np.ndarray
    ce_ltp: np.ndarray
    pe_ltp: np.ndarray
    ce_oi: np.ndarray
    pe_oi: np.ndarray
    ce_volume: np.ndarray
    pe_volume: np.ndarray
    ce_iv: np.ndarray
    pe_iv: np.ndarray
    ce_oi_change: np.ndarray
    pe_oi_change: np.ndarray
    memo: dict[Any, Any] = field(default_factory=dict)  # derived values of this chain


QUOTE_FIELDS = (*COLUMNS, "ce_bid", "ce_ask", "pe_bid", "pe_ask")
_ROW = attrgetter(*QUOTE_FIELDS)
_NO_VALUE_IF_ZERO = [i for i, name in enumerate(COLUMNS) if name.endswith(("_ltp", "_iv"))]


@dataclass
class _Held:
    quotes: Sequence[OptionQuote]
    table: np.ndarray  # (QUOTE_FIELDS x strikes) as given, None -> NaN
    arrays: ChainArrays | None = None


_cache: OrderedDict[int, _Held] = OrderedDict()


def _held(quotes: Sequence[OptionQuote]) -> _Held:
    """The quotes' table, built in one pass and cached by identity while ``quotes`` is held
    (the validator and every analytic of a block read the same one)."""
    hit = _cache.get(id(quotes))
    if hit is not None and hit.quotes is quotes:
        _cache.move_to_end(id(quotes))
        return hit
    table = np.array([_ROW(q) for q in quotes], dtype=float).reshape(-1, len(QUOTE_FIELDS)).T
    held = _cache[id(quotes)] = _Held(quotes, table)
    while len(_cache) > CACHE_SIZE:
        _cache.popitem(last=False)
    return held


def quote_columns(quotes: Sequence[OptionQuote]) -> dict[str, np.ndarray]:
    """Every ``QUOTE_FIELDS`` column in the quotes' own order, values as given (None -> NaN):
    what a validator checks. Read-only views of the cached table."""
    table = _held(quotes).table
    return {name: table[i] for i, name in enumerate(QUOTE_FIELDS)}


def as_arrays(quotes: Sequence[OptionQuote]) -> ChainArrays:
    """The analytic columns of ``quotes``, sorted by strike (cached like the table)."""
    held = _held(quotes)
    if held.arrays is None:
        table = held.table[: len(COLUMNS)]
        table = table[:, np.argsort(table[0], kind="stable")]  # a copy: a row per column
        priced = table[_NO_VALUE_IF_ZERO]
        priced[priced <= 0] = np.nan
        table[_NO_VALUE_IF_ZERO] = priced
        columns: dict[str, Any] = dict(zip(COLUMNS, table, strict=True))
        held.arrays = ChainArrays(**columns)
    return held.arrays
