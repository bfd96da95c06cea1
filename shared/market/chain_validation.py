"""The one validator of option-chain snapshots (pure): every path a chain takes in — a file,
the live feed, the stream a consumer reads — refuses the same things for the same reasons.

A chain is refused whole (one reason per problem, the first few strikes named) rather than
repaired: a chain with one impossible strike cannot be trusted for max pain or walls either.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import numpy as np

from shared.contract.schemas import QUOTE_FIELDS, OptionChain
from shared.market.calendar import ist_date
from shared.signals.chain_arrays import quote_table

MAX_NAMED = 3  # strikes named per problem


@dataclass(frozen=True)
class ChainLimits:
    max_future_s: int = 120  # how far ahead of the clock a snapshot may be taken
    max_oi_units: float = 2e9  # per strike and side: NIFTY's whole market is ~1e8-1e9
    max_iv: float = 4.0  # a published IV above 400 % is a unit error, not a quote
    strike_band: tuple[float, float] = (0.3, 3.0)  # strike / spot
    spot_range: tuple[float, float] = (1_000.0, 200_000.0)
    max_years_to_expiry: float = 6.0


def _named(strikes: list[float]) -> str:
    shown = ", ".join(f"{k:g}" for k in strikes[:MAX_NAMED])
    return shown + (f" and {len(strikes) - MAX_NAMED} more" if len(strikes) > MAX_NAMED else "")


def _expiry_problems(chain: OptionChain, limits: ChainLimits) -> list[str]:
    try:
        expiry = date.fromisoformat(chain.expiry)
    except ValueError:
        return [f"expiry {chain.expiry!r} is not an ISO date"]
    taken = ist_date(chain.snapshot_time)
    if expiry < taken:
        return [f"expiry {chain.expiry} had passed when the snapshot was taken ({taken})"]
    if (expiry - taken).days > limits.max_years_to_expiry * 366:
        return [f"expiry {chain.expiry} is over {limits.max_years_to_expiry:g} years away"]
    return []


def _at(strikes: np.ndarray, mask: np.ndarray | np.bool_) -> list[float]:
    return strikes[mask].tolist()


def _rows(*names: str) -> list[int]:
    return [QUOTE_FIELDS.index(name) for name in names]


_NON_NEGATIVE = _rows("ce_oi", "pe_oi", "ce_ltp", "pe_ltp", "ce_volume", "pe_volume")
_OI, _IV = _rows("ce_oi", "pe_oi"), _rows("ce_iv", "pe_iv")
_BID, _ASK = _rows("ce_bid", "pe_bid"), _rows("ce_ask", "pe_ask")


def _quote_problems(chain: OptionChain, limits: ChainLimits) -> list[str]:
    """Every check is a comparison of the quotes table's rows (NaN, a missing value, compares
    False); a check's strikes are found only when it fails."""
    quotes = chain.quotes
    if not quotes:
        return ["the chain has no strikes"]
    table = quote_table(quotes)
    strikes = table[QUOTE_FIELDS.index("strike")]
    problems = []
    if (strikes <= 0).any():
        problems.append(f"non-positive strike(s) {_named(_at(strikes, strikes <= 0))}")
    steps = np.diff(strikes)
    if not (steps > 0).all():  # strictly rising: neither duplicates nor out of order
        unique, counts = np.unique(strikes, return_counts=True)
        if unique.size < strikes.size:
            problems.append(f"duplicate strike(s) {_named(unique[counts > 1].tolist())}")
        elif (steps <= 0).any():
            problems.append("strikes out of order (must rise)")
    low, high = limits.strike_band
    moneyness = strikes / chain.spot
    far = (strikes > 0) & ((moneyness < low) | (moneyness > high))
    if far.any():
        problems.append(f"strike(s) {_named(_at(strikes, far))} outside {low:g}-{high:g} x spot")
    bad = table[_NON_NEGATIVE] < 0
    if bad.any():
        at = _named(_at(strikes, bad.any(axis=0)))
        problems.append(f"negative OI, price or volume at {at}")
    bad = table[_OI] > limits.max_oi_units
    if bad.any():
        at = _named(_at(strikes, bad.any(axis=0)))
        problems.append(f"OI above {limits.max_oi_units:.0e} units at {at}")
    iv = table[_IV]
    bad = (iv < 0) | (iv > limits.max_iv)
    if bad.any():
        at = _named(_at(strikes, bad.any(axis=0)))
        problems.append(f"IV outside 0-{limits.max_iv:g} (annualised fraction) at {at}")
    bid, ask = table[_BID], table[_ASK]
    bad = (bid > 0) & (ask > 0) & (bid > ask)
    if bad.any():
        problems.append(f"crossed quotes (bid > ask) at {_named(_at(strikes, bad.any(axis=0)))}")
    return problems


def chain_problems(
    chain: OptionChain, now_s: float | None = None, limits: ChainLimits | None = None
) -> list[str]:
    """Why ``chain`` cannot be used; empty when it can. ``now_s``: the clock the snapshot
    time is judged against (None: not judged, e.g. a file read after the fact)."""
    limits = limits or ChainLimits()
    low, high = limits.spot_range
    if not (math.isfinite(chain.spot) and low <= chain.spot <= high):
        return [f"spot {chain.spot} outside {low:g}-{high:g}"]
    problems = _expiry_problems(chain, limits)
    if now_s is not None and chain.snapshot_time > now_s + limits.max_future_s:
        ahead = chain.snapshot_time - now_s
        problems.append(f"snapshot taken {ahead:.0f} s ahead of the clock")
    return problems + _quote_problems(chain, limits)


def describe(chain: OptionChain) -> str:
    return f"option chain {chain.expiry!r} at {chain.snapshot_time} ({chain.source})"
