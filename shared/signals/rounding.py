"""Numpy columns as the document's values: NaN as None, and Python's ``round`` over many
values at once, giving exactly the floats it gives."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

import numpy as np

_EXACT_SCALE_UP_TO = 22  # 10**n is an exact double up to here
_NEAR_TIE_ULPS = 4.0


def as_optional(values: np.ndarray) -> list[float | None]:
    """The values as Python floats, None where NaN (an object array's ``tolist`` is a C
    loop, unlike a generator)."""
    out = values.astype(object)
    out[np.isnan(values)] = None
    return list(out.tolist())


def optional_floats(column: str) -> cached_property[tuple[float | None, ...]]:
    """A cached property of a class holding numpy columns: the column ``column`` as Python
    floats, None where NaN, built on first use (the per-strike tuples the block reads)."""

    def floats(self: Any) -> tuple[float | None, ...]:
        return tuple(as_optional(getattr(self, column)))

    return cached_property(floats)


def rounded(values: Sequence[float | None] | np.ndarray, ndigits: int) -> list[float | None]:
    """``[None if v is None else round(v, ndigits) for v in values]``, vectorised; None or
    NaN in, None out.

    numpy rounds to ``n`` digits as ``rint(x * 10**n) / 10**n``; for an integer ``k`` that
    division is the double nearest ``k / 10**n``, which is also what ``round`` returns for
    the same ``k`` (both are correctly rounded). They can only disagree on ``k``: numpy
    rounds the product ``x * 10**n`` (itself rounded to a double), Python the exact ``x``.
    That matters only when the product lies within half an ulp of a half-integer, so values
    within a few ulps of one (and values too large for an exact ``k``, infinity) are rounded
    by ``round`` itself; the rest take the vectorised path."""
    if not 0 <= ndigits <= _EXACT_SCALE_UP_TO:
        raise ValueError(f"ndigits {ndigits} outside 0-{_EXACT_SCALE_UP_TO}")
    x = np.asarray(values, dtype=float)  # None -> NaN
    scale = 10.0**ndigits
    scaled = x * scale
    missing = np.isnan(x)
    with np.errstate(invalid="ignore"):
        to_tie = np.abs(scaled - np.floor(scaled) - 0.5)
        plain = (to_tie > _NEAR_TIE_ULPS * np.spacing(np.abs(scaled))) & (np.abs(scaled) < 2.0**52)
    out = (np.rint(scaled) / scale).astype(object)
    out[missing] = None
    for i in np.flatnonzero(~plain & ~missing).tolist():
        out[i] = round(float(x[i]), ndigits)
    return list(out.tolist())
