"""A chain's quotes as the numpy columns the analytics read, derived once per chain's quotes
from its table (``schemas.Quotes``): every chain analytic of one block reads the same arrays."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shared.contract.schemas import QUOTE_FIELDS, OptionQuote, Quotes

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


_COLUMN_ROWS = [QUOTE_FIELDS.index(name) for name in COLUMNS]  # in the quotes table
_NO_VALUE_IF_ZERO = [i for i, name in enumerate(COLUMNS) if name.endswith(("_ltp", "_iv"))]


@dataclass
class _Held:
    quotes: Sequence[OptionQuote]
    table: np.ndarray  # the ``Quotes`` table (QUOTE_FIELDS x strikes), as given
    arrays: ChainArrays | None = None


_cache: OrderedDict[int, _Held] = OrderedDict()


def _held(quotes: Sequence[OptionQuote]) -> _Held:
    """The quotes' table (a chain's own; other sequences of quotes are turned into one),
    held with what is derived from it while ``quotes`` is (cached by identity: the validator
    and every analytic of a block read the same one)."""
    hit = _cache.get(id(quotes))
    if hit is not None and hit.quotes is quotes:
        _cache.move_to_end(id(quotes))
        return hit
    table = quotes.table if isinstance(quotes, Quotes) else Quotes.from_rows(quotes).table
    held = _cache[id(quotes)] = _Held(quotes, table)
    while len(_cache) > CACHE_SIZE:
        _cache.popitem(last=False)
    return held


def quote_table(quotes: Sequence[OptionQuote]) -> np.ndarray:
    """The quotes' table: a row per ``QUOTE_FIELDS`` column, in the quotes' own order, values
    as given (None -> NaN): what a validator checks. Read-only."""
    return _held(quotes).table


def quote_columns(quotes: Sequence[OptionQuote]) -> dict[str, np.ndarray]:
    """Every ``QUOTE_FIELDS`` column of ``quote_table``: read-only views of it."""
    table = _held(quotes).table
    return {name: table[i] for i, name in enumerate(QUOTE_FIELDS)}


def as_arrays(quotes: Sequence[OptionQuote]) -> ChainArrays:
    """The analytic columns of ``quotes``, sorted by strike (cached like the table)."""
    held = _held(quotes)
    if held.arrays is None:
        table = held.table[_COLUMN_ROWS]  # a copy: a row per column
        table = table[:, np.argsort(table[0], kind="stable")]
        priced = table[_NO_VALUE_IF_ZERO]
        priced[priced <= 0] = np.nan
        table[_NO_VALUE_IF_ZERO] = priced
        columns: dict[str, Any] = dict(zip(COLUMNS, table, strict=True))
        held.arrays = ChainArrays(**columns)
    return held.arrays
