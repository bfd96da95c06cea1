"""Across expiries at one moment: ATM IV per listed expiry with days to expiry, the 25-delta
risk reversal and butterfly, the synthetic forward and basis; and IV percentile / rank of an
IV against its history."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from shared.contract.schemas import OptionChain, OptionQuote
from shared.market.calendar import daily_close_time, to_date
from shared.signals.chain import (
    as_column,
    chain_smile,
    delta_skew,
    percentile_rank,
    smile_atm_iv,
)
from shared.signals.chain_arrays import as_arrays
from shared.signals.forward import FORWARD_FORMULA, PARITY_STRIKES, parity_pairs_of
from shared.signals.greeks import chain_ivs, chains_ivs
from shared.signals.skew import SECONDS_PER_YEAR

TERM_STRUCTURE_FORMULA = (
    "per expiry: days = (expiry 15:30 IST - snapshot) / 86400 calendar days; atm_iv = "
    "chain.smile_atm_iv (the one ATM IV); rr25 = IV(put with delta nearest -0.25) - IV(call "
    "with delta nearest 0.25) (chain.delta_skew); bf25 = (IV25P + IV25C)/2 - atm_iv"
)
IV_RANK_FORMULA = (
    "rank = (iv - min)/(max - min), min and max over the history and iv itself (0..1); "
    "percentile = share of the history at or below iv"
)
BASIS_FORMULA = "basis = F - spot in index points, and 100 x (F - spot)/spot in percent"


@dataclass(frozen=True)
class ExpiryVol:
    """One expiry's point of the term structure; None values with ``reason``."""

    expiry: str
    days_to_expiry: float  # calendar days to the expiry's 15:30 IST close
    forward: float | None  # the parity forward (None without a call/put pair)
    atm_iv: float | None  # annualised fraction
    risk_reversal_25d: float | None  # IV25P - IV25C: > 0 means downside costs more
    butterfly_25d: float | None  # (IV25P + IV25C)/2 - ATM IV
    put_25d_strike: float | None
    call_25d_strike: float | None
    reason: str | None


@dataclass(frozen=True)
class Basis:
    forward: float  # synthetic forward (or a future's price)
    spot: float
    basis_points: float  # forward - spot
    basis_pct: float  # 100 x (forward - spot) / spot
    strikes: tuple[float, ...]  # the parity strikes used (empty for a future's price)


def years_to_close(chain: OptionChain) -> float:
    """Year fraction from the snapshot to the expiry day's 15:30 IST close."""
    return (daily_close_time(to_date(chain.expiry)) - chain.snapshot_time) / SECONDS_PER_YEAR


def term_structure(chains: Sequence[OptionChain]) -> tuple[ExpiryVol, ...]:
    """``TERM_STRUCTURE_FORMULA`` for chains of different expiries taken at one time, nearest
    expiry first. All chains are valued in one vectorised pass."""
    ordered = sorted(chains, key=lambda c: c.expiry)
    years = [years_to_close(c) for c in ordered]
    chains_ivs([(c.quotes, c.spot, y) for c, y in zip(ordered, years, strict=True) if y > 0])
    out = []
    for chain, t in zip(ordered, years, strict=True):
        days = round(t * 365, 4)
        smile = chain_smile(chain.quotes, chain.spot, t)
        if smile is None:
            reason: str | None = (
                "no quotes" if not chain.quotes else "expired: at or past the 15:30 close"
            )
            out.append(ExpiryVol(chain.expiry, days, None, None, None, None, None, None, reason))
            continue
        forward = smile.forward if smile.forward_from_parity else None
        atm = smile_atm_iv(smile)
        skew = delta_skew(smile, t) if atm is not None else None
        if atm is None:
            solved = chain_ivs(chain.quotes, chain.spot, t)
            why = solved.reason if solved is not None else None  # expiry day, < 1 minute
            reason = why or "no strike with an IV"
        elif skew is None:
            reason = "no out-of-the-money put and call IVs for the 25-delta wings"
        else:
            reason = None
        out.append(
            ExpiryVol(
                expiry=chain.expiry,
                days_to_expiry=days,
                forward=forward,
                atm_iv=atm,
                risk_reversal_25d=None if skew is None else skew.risk_reversal,
                butterfly_25d=None
                if skew is None or atm is None
                else round((skew.put_iv + skew.call_iv) / 2 - atm, 6),
                put_25d_strike=None if skew is None else skew.put_strike,
                call_25d_strike=None if skew is None else skew.call_strike,
                reason=reason,
            )
        )
    return tuple(out)


def basis(forward: float, spot: float, strikes: tuple[float, ...] = ()) -> Basis:
    """``BASIS_FORMULA`` of a forward (synthetic, or a future's price) against spot."""
    return Basis(
        forward=forward,
        spot=spot,
        basis_points=round(forward - spot, 2),
        basis_pct=round(100 * (forward - spot) / spot, 4),
        strikes=strikes,
    )


def synthetic_forward(
    quotes: Sequence[OptionQuote], spot: float, count: int = PARITY_STRIKES
) -> Basis | None:
    """The parity forward (``forward.FORWARD_FORMULA``: median of K + C - P at the ``count``
    strikes around ATM) and its basis to spot; None without a strike priced on both sides."""
    found = parity_pairs_of(as_arrays(quotes), spot, count) if quotes else None
    return None if found is None else basis(found[0], spot, found[1])


SYNTHETIC_FORWARD_FORMULA = FORWARD_FORMULA


def iv_percentile(history: Sequence[float] | np.ndarray, iv: float) -> float | None:
    """Share of ``history`` at or below ``iv`` (``chain.percentile_rank``); None if empty."""
    return percentile_rank(history, iv)


def iv_rank(history: Sequence[float] | np.ndarray, iv: float) -> float | None:
    """``IV_RANK_FORMULA``: where ``iv`` sits between the lowest and highest IV of the history
    (and itself); None for an empty history or one where every IV equals ``iv``."""
    if not len(history):
        return None
    values = as_column(history)
    low, high = min(float(values.min()), iv), max(float(values.max()), iv)
    if high == low:
        return None
    return round((iv - low) / (high - low), 4)
