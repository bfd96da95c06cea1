"""Dealer gamma exposure (GEX) by strike and in total, and the zero-gamma level: the spot at
which the total would change sign, each strike's IV held where it is now."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from shared.contract.schemas import OptionQuote
from shared.signals.chain_arrays import as_arrays
from shared.signals.greeks import ChainGreeks, black76_gamma
from shared.signals.rounding import optional_floats

GEX_FORMULA = (
    "GEX = sign x gamma x OI x spot^2 x 0.01, in rupees of dealer delta change per 1% move of "
    "spot (gamma: Black-76 per index point, OI in units = contracts x lot size); sign +1 for "
    "calls, -1 for puts: ASSUMES dealers are long the calls and short the puts (customers "
    "write calls and buy puts) - an assumption about positioning, not a fact the chain shows. "
    "Strikes whose gamma is None (see greeks.py) are left out; their OI is reported"
)
ZERO_GAMMA_FORMULA = (
    "the spot S' in spot x [1 - {pct:.0%}, 1 + {pct:.0%}] (grid step {step:.2%}) where total GEX "
    "crosses zero, linear between grid points, the crossing nearest spot; at S' each forward "
    "is F x S'/spot and each strike keeps its IV, T and OI"
)
ZERO_GAMMA_RANGE = 0.05
ZERO_GAMMA_STEP = 0.001


@dataclass(frozen=True, eq=False)
class GammaExposure:
    """One expiry's GEX per strike (``strikes`` order) as columns, NaN where that side's gamma
    is None (``net`` where either side's is), and in total; the per-strike tuples (None where
    none) are built on first use."""

    spot: float
    strikes: tuple[float, ...]
    call: np.ndarray  # >= 0 (dealers assumed long calls), rupees per 1% move
    put: np.ndarray  # <= 0 (dealers assumed short puts)
    total_gex_rupees_per_1pct: float  # over the valued sides
    call_oi_without_gamma_units: float  # OI of strikes left out (no IV / expiry day)
    put_oi_without_gamma_units: float

    @cached_property
    def net(self) -> np.ndarray:
        return self.call + self.put

    call_gex_rupees_per_1pct = optional_floats("call")
    put_gex_rupees_per_1pct = optional_floats("put")
    net_gex_rupees_per_1pct = optional_floats("net")


@dataclass(frozen=True)
class ZeroGamma:
    level: float | None  # the spot where total GEX crosses zero; None with ``reason``
    reason: str | None
    total_gex_at_spot_rupees_per_1pct: float
    range_pct: float  # searched spot x (1 +- range_pct)


def _oi(greeks: ChainGreeks, quotes: Sequence[OptionQuote]) -> tuple[np.ndarray, np.ndarray]:
    a = as_arrays(quotes)
    if tuple(a.strike.tolist()) != greeks.strikes:
        raise ValueError("greeks and quotes are of different chains (strikes differ)")
    return a.ce_oi, a.pe_oi


def gamma_exposure(greeks: ChainGreeks, quotes: Sequence[OptionQuote]) -> GammaExposure:
    """``GEX_FORMULA`` per strike of one expiry at the chain's spot. ``greeks`` must be of
    ``quotes`` (``chain_greeks(quotes, spot, years)``)."""
    ce_oi, pe_oi = _oi(greeks, quotes)
    scale = greeks.spot * greeks.spot * 0.01
    call = greeks.call.gammas * ce_oi * scale
    put = -greeks.put.gammas * pe_oi * scale
    return GammaExposure(
        spot=greeks.spot,
        strikes=greeks.strikes,
        call=call,
        put=put,
        total_gex_rupees_per_1pct=float(np.nansum(call) + np.nansum(put)),
        call_oi_without_gamma_units=float(ce_oi[np.isnan(call)].sum()),
        put_oi_without_gamma_units=float(pe_oi[np.isnan(put)].sum()),
    )


def total_gex_at(
    chains: Sequence[tuple[ChainGreeks, Sequence[OptionQuote]]],
    spots: Sequence[float] | np.ndarray,
) -> np.ndarray:
    """Total GEX (rupees per 1% move, all expiries) at each hypothetical spot in ``spots``:
    forwards move with spot (F x S'/spot), each strike's IV, T and OI held."""
    grid = np.asarray(spots, dtype=float)
    total = np.zeros(grid.shape)
    for greeks, quotes in chains:
        ce_oi, pe_oi = _oi(greeks, quotes)
        strikes = np.asarray(greeks.strikes, dtype=float)
        forwards = greeks.forward * grid[:, None] / greeks.spot
        call_iv = greeks.call.ivs
        put_iv = call_iv if greeks.iv_from == "otm" else greeks.put.ivs
        sides = ((call_iv, ce_oi, 1.0), (put_iv, pe_oi, -1.0))
        keeps = [np.isfinite(iv) & (oi > 0) for iv, oi, _ in sides]
        gammas: list[np.ndarray | None]
        if greeks.iv_from == "otm" and (keeps[0] | keeps[1]).any():
            # one IV per strike: the grid of every strike either side needs, once; a side's
            # columns are the values computing them alone gives (copied to C order, so that
            # its row sums add in the same order; all of them: the grid itself)
            either = keeps[0] | keeps[1]
            both = black76_gamma(forwards, strikes[either], greeks.years, call_iv[either])
            gammas = [
                both if keep[either].all() else np.ascontiguousarray(both[:, keep[either]])
                for keep in keeps
            ]
        else:
            gammas = [
                black76_gamma(forwards, strikes[keep], greeks.years, iv[keep])
                if keep.any()
                else None
                for (iv, _, _), keep in zip(sides, keeps, strict=True)
            ]
        for (_, oi, sign), keep, gamma in zip(sides, keeps, gammas, strict=True):
            if gamma is not None and keep.any():
                total += sign * (gamma * oi[keep]).sum(axis=1)
    return total * grid * grid * 0.01


FIRST_WIDTH = 10  # grid steps either side of spot searched first (0.1% steps: +-1%)


def _levels(grid: np.ndarray, total: np.ndarray) -> list[float]:
    """Where total GEX on ``grid`` is zero: the grid points where it is, then the linear
    crossings between neighbours of opposite sign, each in grid order."""
    exact = np.flatnonzero(total == 0)
    crossings = np.flatnonzero(np.sign(total[:-1]) * np.sign(total[1:]) < 0)
    levels = [float(grid[i]) for i in exact]
    for i in crossings.tolist():
        lo, hi = float(total[i]), float(total[i + 1])
        levels.append(float(grid[i] + (grid[i + 1] - grid[i]) * lo / (lo - hi)))
    return levels


def zero_gamma_level(
    chains: Sequence[tuple[ChainGreeks, Sequence[OptionQuote]]],
    range_pct: float = ZERO_GAMMA_RANGE,
    step_pct: float = ZERO_GAMMA_STEP,
) -> ZeroGamma:
    """``ZERO_GAMMA_FORMULA`` over one or more expiries of one moment (same spot).

    The grid is computed from spot outwards, ``FIRST_WIDTH`` steps either side first, twice
    as far each time no crossing is strictly nearer than the computed part's ends (a crossing
    beyond them is farther): a grid point's total is the same whichever points are computed
    with it, so the level is the one the whole grid gives (it is within 1% of spot in 95% of
    the bundled real snapshots)."""
    if not chains:
        return ZeroGamma(None, "no chains", 0.0, range_pct)
    spot = chains[0][0].spot
    steps = round(range_pct / step_pct)
    grid = spot * (1 + step_pct * np.arange(-steps, steps + 1))
    width = min(FIRST_WIDTH, steps)
    total = total_gex_at(chains, grid[steps - width : steps + width + 1])
    at_spot = float(total[width])
    while width < steps:
        near = grid[steps - width : steps + width + 1]
        levels = _levels(near, total) if np.any(total) else []  # all zero: maybe no IVs
        if levels:
            level = min(levels, key=lambda s: abs(s - spot))
            if abs(level - spot) < min(spot - near[0], near[-1] - spot):
                return ZeroGamma(level, None, at_spot, range_pct)
        wider = min(2 * width, steps)
        below = total_gex_at(chains, grid[steps - wider : steps - width])
        above = total_gex_at(chains, grid[steps + width + 1 : steps + wider + 1])
        total, width = np.concatenate((below, total, above)), wider
    if not np.any(total):
        return ZeroGamma(None, "no open interest with a gamma (no IVs)", at_spot, range_pct)
    levels = _levels(grid, total)
    if not levels:
        side = "positive" if at_spot > 0 else "negative"
        return ZeroGamma(
            None,
            f"total GEX stays {side} for spot within ±{range_pct:.0%} "
            f"({grid[0]:.2f} to {grid[-1]:.2f})",
            at_spot,
            range_pct,
        )
    return ZeroGamma(min(levels, key=lambda s: abs(s - spot)), None, at_spot, range_pct)
