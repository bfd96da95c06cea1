"""Max pain: the settlement price (a listed strike) that minimises what option writers pay
out, given the chain's open interest."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from shared.contract.schemas import OptionQuote
from shared.signals.chain_arrays import as_arrays

MAX_PAIN_FORMULA = (
    "argmin over strikes P of sum_K ce_oi(K)*max(P-K,0) + pe_oi(K)*max(K-P,0); "
    "zone = contiguous strikes whose payout is within {tolerance:.0%} of the minimum"
)


@dataclass(frozen=True)
class MaxPain:
    strike: float
    lower: float  # zone bounds: strikes around max pain with near-minimal payout
    upper: float
    payout: float  # writers' payout at ``strike``, in index points x OI units


def writers_payout(
    strikes: np.ndarray, ce_oi: np.ndarray, pe_oi: np.ndarray, settle: np.ndarray
) -> np.ndarray:
    """Total intrinsic value owed to option holders for each settlement price in ``settle``
    (the put side's matrix reuses the differences' buffer: two settle x strikes arrays, not
    four, each new one a fresh mapping of memory at a chain's 150 x 150)."""
    diff = settle[:, None] - strikes[None, :]
    calls = np.maximum(diff, 0.0)
    puts = np.maximum(np.negative(diff, out=diff), 0.0, out=diff)
    return calls @ ce_oi + puts @ pe_oi


def compute_max_pain(quotes: Sequence[OptionQuote], tolerance: float = 0.02) -> MaxPain | None:
    """Max pain over the chain's strikes, or None when the chain carries no open interest.
    Remembered per chain: the seller's max-pain and chain groups ask for the same one."""
    a = as_arrays(quotes)
    key = ("max_pain", tolerance)
    if key not in a.memo:
        a.memo[key] = _max_pain(a.strike, a.ce_oi, a.pe_oi, tolerance)
    result: MaxPain | None = a.memo[key]
    return result


def _max_pain(
    strikes: np.ndarray, ce_oi: np.ndarray, pe_oi: np.ndarray, tolerance: float
) -> MaxPain | None:
    if strikes.size == 0 or (ce_oi.sum() + pe_oi.sum()) <= 0:
        return None
    payout = writers_payout(strikes, ce_oi, pe_oi, strikes)
    best = int(np.argmin(payout))
    limit = payout[best] * (1 + tolerance)
    lo = hi = best
    while lo > 0 and payout[lo - 1] <= limit:
        lo -= 1
    while hi < len(strikes) - 1 and payout[hi + 1] <= limit:
        hi += 1
    return MaxPain(
        float(strikes[best]), float(strikes[lo]), float(strikes[hi]), float(payout[best])
    )
