"""Per-strike implied vol and Black-76 Greeks of whole chains, vectorised, and the one ATM IV
definition every tile uses. Undiscounted Black-76 (r = 0) on the parity forward."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Literal

import numpy as np
from scipy.special import ndtr

from shared.contract.schemas import OptionQuote
from shared.signals.chain_arrays import ChainArrays, as_arrays
from shared.signals.forward import parity_forward_of
from shared.signals.rounding import as_optional, optional_floats
from shared.signals.skew import SECONDS_PER_YEAR, implied_vol

IvFrom = Literal["otm", "own"]

MIN_YEARS = 60 / SECONDS_PER_YEAR  # under a minute to the expiry's 15:30 close: no time value
IV_LOW, IV_HIGH = 1e-4, 5.0  # the solver's bracket (annualised)
PUBLISHED_IV_TOLERANCE = 0.005  # published IV used only within 0.5 vol point of the LTP's IV
REPRICE_TOLERANCE_POINTS = 1e-4  # a solved IV reprices its LTP to this, or to 1e-6 of vol
MIN_TIME_VALUE_POINTS = 0.05  # one NSE tick: less time value than that leaves the IV undetermined
_ROOT_2PI = math.sqrt(2 * math.pi)

GREEKS_FORMULA = (
    "undiscounted Black-76, r = 0, on the parity forward F; T = calendar seconds to the "
    "expiry's 15:30 IST close / (365*86400); d1 = (ln(F/K) + iv^2 T/2)/(iv sqrt T); "
    "call delta = N(d1), put delta = N(d1) - 1; gamma = n(d1)/(F iv sqrt T) per index point "
    "of F; vega = F n(d1) sqrt T * 0.01 index points per 1 vol point; theta = -F n(d1) iv / "
    "(2 sqrt T) / 365 index points per calendar day (same for call and put when r = 0). "
    "IV per strike from its out-of-the-money side (put below F, call at and above) applied to "
    "both sides ('otm'), or each side from its own quote ('own'): the published IV when "
    "within 0.5 vol point of the IV solved from the LTP (or when there is no LTP), else the "
    "solved IV; None with a reason when T < 1 minute, the price is missing/zero, at or below "
    "intrinsic, less than one tick (0.05) above it, at or above the no-arbitrage maximum, or "
    "no IV in [0.0001, 5] reprices it"
)
ATM_IV_FORMULA = (
    "ATM IV = the out-of-the-money smile (put IVs below F, call IVs at and above F) linearly "
    "interpolated in strike at the parity forward F between the nearest smile strikes either "
    "side of F; the nearest smile strike's IV when F is outside the smile"
)


@dataclass(frozen=True, eq=False)
class SideGreeks:
    """One side (calls or puts) of a chain, per strike in ``ChainGreeks.strikes`` order, as
    columns (NaN where none); the per-strike tuples (None where none) are built on first
    use. A strike's values are all None together, with ``reason`` saying why."""

    ivs: np.ndarray  # annualised fraction
    used_published: np.ndarray  # True: the exchange's IV was used; False: solved / none
    deltas: np.ndarray  # per index point of F, call in [0, 1], put in [-1, 0]
    gammas: np.ndarray  # d(delta)/dF, per index point
    vegas: np.ndarray  # price change for +0.01 IV, in index points
    thetas: np.ndarray  # price change per calendar day (< 0), in index points
    reason: tuple[str | None, ...]

    iv = optional_floats("ivs")
    delta = optional_floats("deltas")
    gamma_per_point = optional_floats("gammas")
    vega_points_per_vol_point = optional_floats("vegas")
    theta_points_per_day = optional_floats("thetas")

    @cached_property
    def iv_published(self) -> tuple[bool, ...]:
        return tuple(self.used_published.tolist())


@dataclass(frozen=True)
class ChainGreeks:
    """IVs and Greeks of one expiry's chain. ``reason`` is set when the whole chain has none
    (expiry day after the close, no quotes); then every per-strike value is None."""

    strikes: tuple[float, ...]  # ascending, as in ``as_arrays``
    forward: float  # the parity forward (spot when no strike has both prices)
    forward_from_parity: bool
    spot: float
    years: float  # to the expiry's 15:30 IST close
    iv_from: IvFrom
    call: SideGreeks
    put: SideGreeks
    reason: str | None


def black76_gamma(
    forward: np.ndarray | float, strike: np.ndarray, years: np.ndarray | float, iv: np.ndarray
) -> np.ndarray:
    """Black-76 gamma n(d1)/(F iv sqrt T), per index point of F (arrays broadcast together)."""
    sd = iv * np.sqrt(years)
    d1 = (np.log(forward / strike) + 0.5 * sd * sd) / sd
    return np.exp(-0.5 * d1 * d1) / (_ROOT_2PI * forward * sd)


def _d1(
    forward: np.ndarray | float, strike: np.ndarray, years: np.ndarray | float, iv: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sqrt T, iv sqrt T, d1) of Black-76."""
    root = np.sqrt(years)
    sd = iv * root
    return root, sd, (np.log(forward / strike) + 0.5 * sd * sd) / sd


def _density(d1: np.ndarray) -> np.ndarray:
    """The standard normal density n(d1)."""
    return np.exp(-0.5 * d1 * d1) / _ROOT_2PI


def _vega(forward: np.ndarray | float, density: np.ndarray, root: np.ndarray) -> np.ndarray:
    """Vega per vol point (0.01 of IV) in index points, from the density n(d1)."""
    return forward * density * root * 0.01


def black76_greeks(
    forward: np.ndarray | float,
    strike: np.ndarray,
    years: np.ndarray | float,
    iv: np.ndarray,
) -> dict[str, np.ndarray]:
    """``GREEKS_FORMULA`` for positive ``iv`` and ``years`` (arrays broadcast together):
    call_delta, put_delta, gamma_per_point, vega_points_per_vol_point, theta_points_per_day."""
    root, sd, d1 = _d1(forward, strike, years, iv)
    density = _density(d1)
    call_delta = ndtr(d1)
    return {
        "call_delta": call_delta,
        "put_delta": call_delta - 1.0,
        "gamma_per_point": density / (forward * sd),
        "vega_points_per_vol_point": _vega(forward, density, root),
        "theta_points_per_day": -forward * density * iv / (2 * root) / 365.0,
    }


def black76_prices_and_vega(
    forward: np.ndarray, strike: np.ndarray, years: np.ndarray, iv: np.ndarray, is_call: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Undiscounted Black-76 prices, each side from its own formula (no parity cancellation),
    and vega per vol point (``black76_greeks``'s), from one d1."""
    root, sd, d1 = _d1(forward, strike, years, iv)
    d2 = d1 - sd
    call = forward * ndtr(d1) - strike * ndtr(d2)
    put = strike * ndtr(-d2) - forward * ndtr(-d1)
    return np.where(is_call, call, put), _vega(forward, _density(d1), root)


def _side(is_call: bool) -> str:
    return "call" if is_call else "put"


def _fmt(x: float) -> str:
    return f"{x:.2f}"


@dataclass
class _Legs:
    """Options to value, concatenated over chains (one or two legs per strike)."""

    price: np.ndarray
    published: np.ndarray
    forward: np.ndarray
    strike: np.ndarray
    years: np.ndarray
    is_call: np.ndarray


def _leg_ivs(legs: _Legs) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    """(iv with NaN where none, used-the-published-IV flags, reasons) per leg."""
    n = legs.price.size
    intrinsic = np.where(
        legs.is_call,
        np.maximum(legs.forward - legs.strike, 0.0),
        np.maximum(legs.strike - legs.forward, 0.0),
    )
    with np.errstate(invalid="ignore"):
        has_price = legs.price - intrinsic >= MIN_TIME_VALUE_POINTS  # False for NaN
    has_pub = np.isfinite(legs.published)
    solved = np.full(n, np.nan)
    if has_price.any():
        i = np.flatnonzero(has_price)
        solved[i] = implied_vol(
            legs.price[i],
            legs.forward[i],
            legs.strike[i],
            legs.years[i],
            legs.is_call[i],
            low=IV_LOW,
            high=IV_HIGH,
        )
        ok = np.isfinite(solved[i])
        if ok.any():
            j = i[ok]
            # vega is per 0.01 of vol: the price error of a 1e-6 vol error is vega * 1e-4
            repriced, vega = black76_prices_and_vega(
                legs.forward[j], legs.strike[j], legs.years[j], solved[j], legs.is_call[j]
            )
            interior = (solved[j] > IV_LOW * 1.001) & (solved[j] < IV_HIGH * 0.999)
            tolerance = np.maximum(REPRICE_TOLERANCE_POINTS, vega * 1e-4)
            good = interior & (np.abs(repriced - legs.price[j]) <= tolerance)
            solved[j[~good]] = np.nan
    close = np.abs(legs.published - solved) <= PUBLISHED_IV_TOLERANCE  # False for NaN
    use_pub = has_pub & (~np.isfinite(legs.price) | close)
    iv = np.where(use_pub, legs.published, solved)
    reasons = np.full(n, None, dtype=object)
    missing, unpriced = ~np.isfinite(iv), ~np.isfinite(legs.price)
    reasons[missing & unpriced & legs.is_call] = _NO_PRICE["call"]
    reasons[missing & unpriced & ~legs.is_call] = _NO_PRICE["put"]
    for k in np.flatnonzero(missing & ~unpriced).tolist():
        reasons[k] = _why_no_iv(legs, k)
    return iv, use_pub, reasons.tolist()


_NO_PRICE = {
    side: f"no {side} price (zero or missing LTP) and no published IV" for side in ("call", "put")
}


def _why_no_iv(legs: _Legs, k: int) -> str:
    """Why priced leg ``k`` has no IV."""
    side, price = _side(bool(legs.is_call[k])), float(legs.price[k])
    f, strike = float(legs.forward[k]), float(legs.strike[k])
    intrinsic = max(f - strike, 0.0) if legs.is_call[k] else max(strike - f, 0.0)
    if price <= intrinsic:
        return f"{side} LTP {_fmt(price)} at or below intrinsic {_fmt(intrinsic)} on F {_fmt(f)}"
    if price - intrinsic < MIN_TIME_VALUE_POINTS:
        return (
            f"{side} LTP {_fmt(price)} less than one tick (0.05) above intrinsic "
            f"{_fmt(intrinsic)} on F {_fmt(f)}: IV undetermined"
        )
    ceiling = f if legs.is_call[k] else strike
    if price >= ceiling:
        return f"{side} LTP {_fmt(price)} at or above the no-arbitrage maximum {_fmt(ceiling)}"
    return (
        f"no IV in [{IV_LOW}, {IV_HIGH}] reprices the {side} LTP {_fmt(price)} (time value "
        f"{_fmt(price - intrinsic)} on F {_fmt(f)})"
    )


def _none_side(m: int, reason: str) -> SideGreeks:
    nothing = np.full(m, np.nan)
    return SideGreeks(nothing, np.zeros(m, bool), nothing, nothing, nothing, nothing, (reason,) * m)


def _expired(years: float) -> str:
    if years <= 0:
        return "expired: at or past the expiry's 15:30 IST close, no time value left"
    return (
        f"expiry day: {years * SECONDS_PER_YEAR:.0f} s to the 15:30 IST close (< 60 s), "
        "no time value to imply an IV or Greeks from"
    )


@dataclass(frozen=True)
class ChainIVs:
    """The IV step of ``GREEKS_FORMULA`` for one expiry's chain, as arrays: one leg per
    strike in ``as_arrays`` order for ``iv_from="otm"``, calls then puts for "own". What the
    smile and the ATM IV read; ``chain_greeks`` adds the Greeks and per-strike tuples (only
    the target expiry needs them, not every chain whose ATM IV is wanted)."""

    strikes: np.ndarray
    forward: float
    from_parity: bool
    years: float
    iv: np.ndarray  # NaN where none
    used_published: np.ndarray
    reasons: list[str | None]
    reason: str | None  # the whole chain has no IV (under a minute to the close); iv all NaN


@dataclass
class _Pending:
    n: int
    arrays: ChainArrays
    spot: float
    forward: float
    from_parity: bool
    years: float
    start: int  # first leg of this chain in the concatenated legs


def chains_ivs(
    chains: Sequence[tuple[Sequence[OptionQuote], float, float]], iv_from: IvFrom = "otm"
) -> list[ChainIVs | None]:
    """``ChainIVs`` of many (quotes, spot, years) in one vectorised IV solve over every leg of
    every chain not solved yet (an option's IV does not depend on its batch); None for a chain
    without quotes. Remembered per chain (quotes object), spot, years and ``iv_from``."""
    out: list[ChainIVs | None] = [None] * len(chains)
    pending: list[_Pending] = []
    legs_of = 2 if iv_from == "own" else 1
    size = 0
    for n, (quotes, spot, years) in enumerate(chains):
        if not quotes:
            continue
        a = as_arrays(quotes)
        key = ("ivs", iv_from, spot, years)
        hit = a.memo.get(key)
        if hit is not None:
            out[n] = hit
            continue
        parity = parity_forward_of(a, spot)
        forward = parity if parity is not None else spot
        if years < MIN_YEARS:
            legs, reason = legs_of * a.strike.size, _expired(years)
            a.memo[key] = out[n] = ChainIVs(
                a.strike,
                forward,
                parity is not None,
                years,
                np.full(legs, np.nan),
                np.zeros(legs, dtype=bool),
                [reason] * legs,
                reason,
            )
            continue
        pending.append(_Pending(n, a, spot, forward, parity is not None, years, size))
        size += legs_of * a.strike.size
    if pending:
        _solve(pending, iv_from, size, out)
    return out


def _solve(pending: list[_Pending], iv_from: IvFrom, size: int, out: list[ChainIVs | None]) -> None:
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("price", "pub", "f", "k", "t", "c")}
    for p in pending:
        a, m = p.arrays, p.arrays.strike.size
        if iv_from == "otm":
            is_call = a.strike >= p.forward
            price = np.where(is_call, a.ce_ltp, a.pe_ltp)
            published = np.where(is_call, a.ce_iv, a.pe_iv)
            strike = a.strike
        else:
            is_call = np.repeat([True, False], m)
            price = np.concatenate((a.ce_ltp, a.pe_ltp))
            published = np.concatenate((a.ce_iv, a.pe_iv))
            strike = np.concatenate((a.strike, a.strike))
        parts["price"].append(price)
        parts["pub"].append(published)
        parts["k"].append(strike)
        parts["c"].append(is_call)
        parts["f"].append(np.full(strike.size, p.forward))
        parts["t"].append(np.full(strike.size, p.years))
    legs = _Legs(*(np.concatenate(parts[k]) for k in ("price", "pub", "f", "k", "t", "c")))
    assert legs.price.size == size
    iv, used_published, reasons = _leg_ivs(legs)
    for p in pending:
        rows = slice(p.start, p.start + (2 if iv_from == "own" else 1) * p.arrays.strike.size)
        ivs = ChainIVs(
            p.arrays.strike,
            p.forward,
            p.from_parity,
            p.years,
            iv[rows],
            used_published[rows],
            reasons[rows],
            None,
        )
        p.arrays.memo[("ivs", iv_from, p.spot, p.years)] = out[p.n] = ivs


def chains_greeks(
    chains: Sequence[tuple[Sequence[OptionQuote], float, float]], iv_from: IvFrom = "otm"
) -> list[ChainGreeks]:
    """``GREEKS_FORMULA`` for many (quotes, spot, years) at once: the IVs of ``chains_ivs``
    (one vectorised solve), then the Greeks of each chain as columns (bench/bench_greeks.py:
    3 expiries x 150 strikes, figures in docs/BENCHMARKS.md). Remembered per chain (quotes
    object), spot, years and ``iv_from``."""
    out: list[ChainGreeks] = []
    for (quotes, spot, years), ivs in zip(chains, chains_ivs(chains, iv_from), strict=True):
        if ivs is None:
            nothing = _none_side(0, "")
            out.append(
                ChainGreeks((), spot, False, spot, years, iv_from, nothing, nothing, "no quotes")
            )
            continue
        a = as_arrays(quotes)
        key = ("greeks", iv_from, spot, years)
        if key not in a.memo:
            a.memo[key] = _greeks(ivs, spot, iv_from)
        out.append(a.memo[key])
    return out


def _greeks(ivs: ChainIVs, spot: float, iv_from: IvFrom) -> ChainGreeks:
    m = ivs.strikes.size
    strikes = tuple(ivs.strikes.tolist())
    if ivs.reason is not None:
        none = _none_side(m, ivs.reason)
        return ChainGreeks(
            strikes, ivs.forward, ivs.from_parity, spot, ivs.years, iv_from, none, none, ivs.reason
        )
    strike = ivs.strikes if iv_from == "otm" else np.concatenate((ivs.strikes, ivs.strikes))
    with np.errstate(divide="ignore", invalid="ignore"):
        greeks = black76_greeks(ivs.forward, strike, ivs.years, ivs.iv)

    def side(rows: slice, delta: str) -> SideGreeks:
        return SideGreeks(
            ivs=ivs.iv[rows],
            used_published=ivs.used_published[rows],
            deltas=greeks[delta][rows],
            gammas=greeks["gamma_per_point"][rows],
            vegas=greeks["vega_points_per_vol_point"][rows],
            thetas=greeks["theta_points_per_day"][rows],
            reason=tuple(ivs.reasons[rows]),
        )

    calls = slice(0, m)
    call = side(calls, "call_delta")
    if iv_from == "otm":  # one IV per strike: only the put's delta differs from the call's
        put = replace(call, deltas=greeks["put_delta"][calls])
    else:
        put = side(slice(m, 2 * m), "put_delta")
    return ChainGreeks(
        strikes=strikes,
        forward=ivs.forward,
        forward_from_parity=ivs.from_parity,
        spot=spot,
        years=ivs.years,
        iv_from=iv_from,
        call=call,
        put=put,
        reason=None,
    )


def chain_ivs(
    quotes: Sequence[OptionQuote], spot: float, years: float, iv_from: IvFrom = "otm"
) -> ChainIVs | None:
    """``ChainIVs`` of one expiry's quotes (see ``chains_ivs``); None without quotes."""
    return chains_ivs([(quotes, spot, years)], iv_from)[0]


def chain_greeks(
    quotes: Sequence[OptionQuote], spot: float, years: float, iv_from: IvFrom = "otm"
) -> ChainGreeks:
    """``GREEKS_FORMULA`` for one expiry's quotes (see ``chains_greeks``)."""
    return chains_greeks([(quotes, spot, years)], iv_from)[0]


def interpolated_atm_iv(
    strikes: Sequence[float], ivs: Sequence[float | None], forward: float
) -> float | None:
    """``ATM_IV_FORMULA`` on smile points (strikes ascending); None without any IV.

    Why this definition: it reads only out-of-the-money quotes (an in-the-money LTP is often
    stale, even below intrinsic: averaging an ITM call's IV in gave 0.1539 where the smile says
    0.1335), it is one number per chain whichever tile asks, and it moves continuously with F
    (the IV at the strike nearest F jumps when F crosses a strike midpoint, which shows up as
    noise in the ATM IV percentile and rank)."""
    points = [(k, v) for k, v in zip(strikes, ivs, strict=True) if v is not None]
    if not points:
        return None
    below = [p for p in points if p[0] < forward]
    above = [p for p in points if p[0] >= forward]
    if not below or not above:
        return min(points, key=lambda p: abs(p[0] - forward))[1]
    (k0, v0), (k1, v1) = below[-1], above[0]
    return v0 + (v1 - v0) * (forward - k0) / (k1 - k0)


ATM_WINDOW = 3  # strikes each side of F valued when only the ATM IV is wanted


@dataclass(frozen=True)
class AtmWindow:
    """The smile's out-of-the-money IVs of up to ``ATM_WINDOW`` strikes either side of F (the
    same values ``chain_greeks`` gives those strikes). ``decisive``: on each side of F the
    window holds a strike with an IV or reaches the chain's end, so ``interpolated_atm_iv`` on
    it equals the one on the whole smile."""

    forward: float
    strikes: tuple[float, ...]
    ivs: tuple[float | None, ...]
    decisive: bool


def atm_windows(
    chains: Sequence[tuple[Sequence[OptionQuote], float, float]], width: int = ATM_WINDOW
) -> list[AtmWindow | None]:
    """``AtmWindow`` of many (quotes, spot, years) in one vectorised solve of a few legs per
    chain (a restarted engine's ATM IV history of thousands of snapshots); None for a chain
    without quotes or under a minute from expiry."""
    out: list[AtmWindow | None] = [None] * len(chains)
    picks: list[tuple[int, float, np.ndarray, bool, bool]] = []  # n, F, strikes, low/high end
    parts: list[tuple[np.ndarray, ...]] = []
    for n, (quotes, spot, years) in enumerate(chains):
        if not quotes or years < MIN_YEARS:
            continue
        a = as_arrays(quotes)
        parity = parity_forward_of(a, spot)
        forward = parity if parity is not None else spot
        first_call = int(np.searchsorted(a.strike, forward, side="left"))  # strikes >= F
        lo, hi = max(0, first_call - width), min(a.strike.size, first_call + width)
        idx = np.arange(lo, hi)
        is_call = a.strike[idx] >= forward
        parts.append(
            (
                np.where(is_call, a.ce_ltp[idx], a.pe_ltp[idx]),
                np.where(is_call, a.ce_iv[idx], a.pe_iv[idx]),
                np.full(idx.size, forward),
                a.strike[idx],
                np.full(idx.size, years),
                is_call,
            )
        )
        picks.append((n, forward, a.strike[idx], lo == 0, hi == a.strike.size))
    if not picks:
        return out
    legs = _Legs(*(np.concatenate(column) for column in zip(*parts, strict=True)))
    iv, _, _ = _leg_ivs(legs)
    start = 0
    for n, forward, strikes, low_end, high_end in picks:
        ivs = iv[start : start + strikes.size]
        start += strikes.size
        valued = np.isfinite(ivs)
        below, above = strikes < forward, strikes >= forward
        decisive = bool((valued & below).any() or low_end) and bool(
            (valued & above).any() or high_end
        )
        out[n] = AtmWindow(forward, tuple(strikes.tolist()), tuple(as_optional(ivs)), decisive)
    return out
