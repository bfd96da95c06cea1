"""The one validator of option-chain snapshots (pure): every path a chain takes in — a file,
the live feed, the stream a consumer reads — refuses the same things for the same reasons.

A chain is refused whole (one reason per problem, the first few strikes named) rather than
repaired: a chain with one impossible strike cannot be trusted for max pain or walls either.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from dataclasses import dataclass
from datetime import date

from shared.calendar import ist_date
from shared.schemas import OptionChain, OptionQuote

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


def _bad(quotes: tuple[OptionQuote, ...], test: str) -> list[float]:
    return [q.strike for q in quotes if _check(q, test)]


def _check(q: OptionQuote, test: str) -> bool:
    if test == "negative":
        values = (q.ce_oi, q.pe_oi, q.ce_ltp, q.pe_ltp, q.ce_volume, q.pe_volume)
        return any(v is not None and v < 0 for v in values)
    if test == "crossed":
        return any(
            b is not None and a is not None and b > 0 and a > 0 and b > a
            for b, a in ((q.ce_bid, q.ce_ask), (q.pe_bid, q.pe_ask))
        )
    return False


def _quote_problems(chain: OptionChain, limits: ChainLimits) -> list[str]:
    quotes = chain.quotes
    if not quotes:
        return ["the chain has no strikes"]
    problems = []
    strikes = [q.strike for q in quotes]
    if any(k <= 0 for k in strikes):
        problems.append(f"non-positive strike(s) {_named([k for k in strikes if k <= 0])}")
    if len(set(strikes)) < len(strikes):
        duplicates = sorted(k for k, n in Counter(strikes).items() if n > 1)
        problems.append(f"duplicate strike(s) {_named(duplicates)}")
    elif any(b <= a for a, b in itertools.pairwise(strikes)):
        problems.append("strikes out of order (must rise)")
    low, high = limits.strike_band
    far = [k for k in strikes if k > 0 and not low <= k / chain.spot <= high]
    if far:
        problems.append(f"strike(s) {_named(far)} outside {low:g}-{high:g} x spot")
    if negative := _bad(quotes, "negative"):
        problems.append(f"negative OI, price or volume at {_named(negative)}")
    huge = [q.strike for q in quotes if max(q.ce_oi, q.pe_oi) > limits.max_oi_units]
    if huge:
        problems.append(f"OI above {limits.max_oi_units:.0e} units at {_named(huge)}")
    wild = [
        q.strike
        for q in quotes
        if any(v is not None and not 0 <= v <= limits.max_iv for v in (q.ce_iv, q.pe_iv))
    ]
    if wild:
        problems.append(f"IV outside 0-{limits.max_iv:g} (annualised fraction) at {_named(wild)}")
    if crossed := _bad(quotes, "crossed"):
        problems.append(f"crossed quotes (bid > ask) at {_named(crossed)}")
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
