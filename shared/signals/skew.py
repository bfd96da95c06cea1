"""Volatility skew: from the option chain's implied vols when a chain is available (Black-76
with the forward from put-call parity), otherwise from the recent return distribution."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from shared.contract.schemas import OptionQuote
from shared.market.calendar import TRADING_DAYS_PER_YEAR

SECONDS_PER_YEAR = 365 * 86400
CHAIN_SKEW_FORMULA = (
    "Black-76 IV, F from put-call parity at the strike with min |C-P|; "
    "put = IV(put at F*(1-{d:.0%})) - IV_atm, call = IV(call at F*(1+{d:.0%})) - IV_atm, "
    "net = put - call"
)
RETURN_SKEW_FORMULA = (
    "put = sqrt(2*252*mean(r^2; r<0)) - sqrt(252*mean(r^2)), call likewise for r>0, "
    "net = put - call, r = daily log returns"
)


@dataclass(frozen=True)
class Skew:
    put: float
    call: float
    net: float
    atm_iv: float | None  # annualised, chain method only


def black76_price(
    forward: float, strike: np.ndarray, years: float, vol: np.ndarray, is_call: np.ndarray
) -> np.ndarray:
    """Undiscounted Black-76 price (a week's discounting is far below LTP tick noise)."""
    sd = np.maximum(vol * math.sqrt(years), 1e-12)
    d1 = (np.log(forward / strike) + 0.5 * sd * sd) / sd
    d2 = d1 - sd
    call = forward * ndtr(d1) - strike * ndtr(d2)
    return np.where(is_call, call, call - forward + strike)  # put by put-call parity


def implied_vol(
    price: np.ndarray,
    forward: float | np.ndarray,
    strike: np.ndarray,
    years: float | np.ndarray,
    is_call: np.ndarray,
    low: float = 1e-4,
    high: float = 5.0,
    iterations: int = 60,
) -> np.ndarray:
    """Black-76 implied vol by vectorised Newton steps kept inside a bisection bracket (a
    step leaving the bracket, or with no vega, bisects instead); an option leaves the
    iteration once its vol moves less than 1e-8, so its IV does not depend on which other
    options are solved with it. ``forward`` and ``years`` may be per option (arrays). NaN
    where the price is outside the no-arbitrage bounds (below intrinsic or above the
    underlying)."""
    fwd = np.broadcast_to(np.asarray(forward, dtype=float), price.shape)
    yrs = np.broadcast_to(np.asarray(years, dtype=float), price.shape)
    intrinsic = np.where(is_call, np.maximum(fwd - strike, 0), np.maximum(strike - fwd, 0))
    valid = (price > intrinsic) & (price < np.where(is_call, fwd, strike)) & (yrs > 0)
    out = np.full(price.shape, np.nan)
    if not valid.any():
        return out
    where = np.flatnonzero(valid)  # the options still iterating, as positions in ``out``
    strike, fwd, root = strike[where], fwd[where], np.sqrt(yrs[where])
    target = np.where(is_call[where], price[where], price[where] + fwd - strike)  # as a call
    lo, hi = np.full(where.size, low), np.full(where.size, high)
    # start near the ATM approximation price ~ 0.4*F*vol*sqrt(T), within [0.05, 2] (np.clip's
    # values, without its wrapper's cost)
    vol = np.minimum(np.maximum(price[where] / (0.4 * fwd * root), 0.05), 2.0)
    log_fk = np.log(fwd / strike)
    vega_scale = fwd * root / math.sqrt(2 * math.pi)
    left = where.size
    # a step without vega (its exp underflows) divides by zero: it bisects instead. Each
    # step is a few dozen numpy calls on a few hundred options: their count, not the
    # options, is the cost, so the loop keeps it low (one count, no generators)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for _ in range(iterations):
            sd = vol * root
            d1 = log_fk / sd + 0.5 * sd
            diff = fwd * ndtr(d1) - strike * ndtr(d1 - sd) - target
            above = diff > 0
            hi = np.where(above, vol, hi)
            lo = np.where(above, lo, vol)
            step = vol - diff / (vega_scale * np.exp(-0.5 * d1 * d1))
            new = np.where((step > lo) & (step < hi), step, 0.5 * (lo + hi))
            moving = abs(new - vol) >= 1e-8
            still = int(np.count_nonzero(moving))
            if still < left:
                done = ~moving
                out[where[done]] = new[done]  # these are done
                if not still:
                    return out
                keep = moving.nonzero()[0]
                where, strike, fwd, root = where[keep], strike[keep], fwd[keep], root[keep]
                target, lo, hi, new = target[keep], lo[keep], hi[keep], new[keep]
                log_fk, vega_scale = log_fk[keep], vega_scale[keep]
                left = still
            vol = new
    out[where] = vol  # still moving after ``iterations``: the last step
    return out


def chain_skew(
    quotes: Sequence[OptionQuote], spot: float, years_to_expiry: float, wing: float = 0.02
) -> Skew | None:
    """Skew from the chain's out-of-the-money smile (``chain.chain_smile``: its parity
    forward and IVs) around THE ATM IV (``chain.smile_atm_iv``); None when the chain has no
    parity forward or < 3 usable IVs."""
    from shared.signals.chain import chain_smile, smile_atm_iv  # chain.py imports this module

    if years_to_expiry <= 0:
        return None
    smile = chain_smile(quotes, spot, years_to_expiry)
    if smile is None or not smile.forward_from_parity or smile.strikes.size < 3:
        return None
    forward = smile.forward
    k_ok, iv_ok = smile.strikes, smile.ivs

    def iv_near(target: float) -> float:
        return float(iv_ok[int(np.argmin(np.abs(k_ok - target)))])

    atm = smile_atm_iv(smile)
    if atm is None:
        return None
    put, call = iv_near(forward * (1 - wing)) - atm, iv_near(forward * (1 + wing)) - atm
    return Skew(
        put=round(put, 6), call=round(call, 6), net=round(put - call, 6), atm_iv=round(atm, 6)
    )


def return_distribution_skew(returns: Sequence[float | None]) -> Skew | None:
    """Downside vs upside semi-volatility (annualised) of daily log returns."""
    r = np.array([x for x in returns if x is not None and math.isfinite(x)], dtype=float)
    if r.size < 10:
        return None
    total = math.sqrt(TRADING_DAYS_PER_YEAR * float(np.mean(r * r)))
    down = math.sqrt(2 * TRADING_DAYS_PER_YEAR * float(np.mean(np.where(r < 0, r * r, 0.0))))
    up = math.sqrt(2 * TRADING_DAYS_PER_YEAR * float(np.mean(np.where(r > 0, r * r, 0.0))))
    put, call = down - total, up - total
    return Skew(put=round(put, 6), call=round(call, 6), net=round(put - call, 6), atm_iv=None)
