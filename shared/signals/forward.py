"""The chain's synthetic forward from put-call parity: the one forward every Black-76 number
of a chain (IVs, Greeks, ATM IV, smile, term structure, basis) is computed on."""

from __future__ import annotations

from collections.abc import Sequence
from statistics import median

import numpy as np

from shared.contract.schemas import OptionQuote
from shared.signals.chain_arrays import ChainArrays, as_arrays

PARITY_STRIKES = 3
PARITY_WINDOW = 0.05  # strikes within 5% of spot: far strikes' stale pairs can have C ~ P too
FORWARD_FORMULA = (
    f"F = median of K + C - P (undiscounted put-call parity, LTPs) over the {PARITY_STRIKES} "
    "strikes with both prices nearest the strike where |C - P| is smallest, among strikes "
    f"within {PARITY_WINDOW:.0%} of spot (all strikes if none there); spot when no strike has "
    "both prices"
)


def parity_pairs_of(
    a: ChainArrays, spot: float, count: int = PARITY_STRIKES
) -> tuple[float, tuple[float, ...]] | None:
    """(``FORWARD_FORMULA``, the strikes whose K + C - P it is the median of) on a chain's
    columns, remembered per chain and spot; None without a strike priced on both sides."""
    key = ("parity_forward", spot, count)
    if key in a.memo:
        return a.memo[key]
    priced = np.isfinite(a.ce_ltp) & np.isfinite(a.pe_ltp)
    near = priced & (np.abs(a.strike / spot - 1) <= PARITY_WINDOW)
    both = np.flatnonzero(near if near.any() else priced)
    found: tuple[float, tuple[float, ...]] | None = None
    if both.size:
        centre = a.strike[both[np.argmin(np.abs(a.ce_ltp[both] - a.pe_ltp[both]))]]
        # nearest to the centre strike, ties to the lower strike (stable sort on the distance)
        pick = both[np.argsort(np.abs(a.strike[both] - centre), kind="stable")[:count]]
        # statistics.median: numpy's value (the middle one, or the mean of two) at a tenth the cost
        forward = float(median((a.strike[pick] + a.ce_ltp[pick] - a.pe_ltp[pick]).tolist()))
        found = (forward, tuple(sorted(a.strike[pick].tolist())))
    a.memo[key] = found
    return found


def parity_forward_of(a: ChainArrays, spot: float, count: int = PARITY_STRIKES) -> float | None:
    """``FORWARD_FORMULA`` on a chain's columns; None without a strike priced on both sides."""
    found = parity_pairs_of(a, spot, count)
    return None if found is None else found[0]


def parity_forward(
    quotes: Sequence[OptionQuote], spot: float, count: int = PARITY_STRIKES
) -> float | None:
    """``FORWARD_FORMULA`` of one expiry's quotes; None without a strike priced on both sides."""
    return parity_forward_of(as_arrays(quotes), spot, count) if quotes else None
