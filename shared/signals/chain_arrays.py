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


_cache: OrderedDict[int, tuple[Sequence[OptionQuote], ChainArrays]] = OrderedDict()


_ROW = attrgetter(*COLUMNS)
_NO_VALUE_IF_ZERO = [i for i, name in enumerate(COLUMNS) if name.endswith(("_ltp", "_iv"))]


def as_arrays(quotes: Sequence[OptionQuote]) -> ChainArrays:
    """The columns of ``quotes`` (cached by identity while the quotes object is held)."""
    hit = _cache.get(id(quotes))
    if hit is not None and hit[0] is quotes:
        _cache.move_to_end(id(quotes))
        return hit[1]
    # one pass over the quotes: a (strikes x columns) table, None -> NaN
    table = np.array([_ROW(q) for q in quotes], dtype=float).reshape(-1, len(COLUMNS))
    table = table[np.argsort(table[:, 0], kind="stable")].T.copy()  # a row per column
    priced = table[_NO_VALUE_IF_ZERO]
    priced[priced <= 0] = np.nan
    table[_NO_VALUE_IF_ZERO] = priced
    columns: dict[str, Any] = dict(zip(COLUMNS, table, strict=True))
    arrays = ChainArrays(**columns)
    _cache[id(quotes)] = (quotes, arrays)
    while len(_cache) > CACHE_SIZE:
        _cache.popitem(last=False)
    return arrays
