"""The seller block read from the analytics' numpy columns is, exactly, the block read the plain
way: strike by strike from the public per-strike tuples, with Python's ``round``, a dict for
the previous snapshot, ``np.nansum``, the smile's points. On a replay of the 411 real intraday
snapshots (every expiry in turn the target, its other expiries and earlier snapshots beside
it). The zero-gamma level searched from spot outwards is the whole grid's, and the IV
solver's loop gives, bit for bit, what its plain form (one array per quantity, each dropped
option removed from each) gives on every leg of the real chains."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from functools import cache
from typing import Any

import numpy as np
import pytest
from msgspec import Struct, to_builtins
from msgspec.structs import asdict
from scipy.special import ndtr

from services.ingest.sources.chain_file import ChainFileSource
from services.seller.compute import CHART_BAND, PCR_NEAR, compute_seller
from shared.bus.engine import ChainCache
from shared.config import Settings
from shared.contract.document.chain import ChainFresh
from shared.contract.document.seller import SellerData
from shared.contract.schemas import OptionChain, OptionQuote
from shared.market.calendar import ist_date, ist_iso
from shared.market.chain_view import ChainView, ChainViews, years_to_expiry
from shared.models.context import EngineContext, ModelBook
from shared.signals.buildup import buildup_between
from shared.signals.chain import Smile, chain_smile
from shared.signals.chain_arrays import as_arrays
from shared.signals.exposure import (
    ZERO_GAMMA_RANGE,
    ZERO_GAMMA_STEP,
    gamma_exposure,
    total_gex_at,
    zero_gamma_level,
)
from shared.signals.forward import parity_forward_of
from shared.signals.greeks import ChainGreeks, chain_greeks, interpolated_atm_iv
from shared.signals.skew import implied_vol
from tests.engines_support import daily_snapshot
from tests.test_chain_file import CHAIN_FILE

Rows = list[list[tuple[str, Any]]]  # each row's items in order: the block's bytes follow it


@cache
def replay() -> tuple[tuple[ChainView, SellerData], ...]:
    """The seller's data as each real snapshot arrives, its expiry the target (every third
    snapshot; one taken after its expiry's close has no fresh target)."""
    chains = [e for e in ChainFileSource(CHAIN_FILE).events() if isinstance(e, OptionChain)]
    chain_cache = ChainCache(None)  # type: ignore[arg-type]  # filled directly, no Redis
    settings = Settings()
    views = ChainViews(chain_cache, settings.chain_max_age_s)
    base = daily_snapshot("2025-06-27")
    out = []
    for i, chain in enumerate(chains):
        chain_cache.add(chain)
        if i % 3 or years_to_expiry(chain) <= 0:
            continue
        snapshot = base.model_copy(
            update={
                "as_of": chain.snapshot_time + 30,
                "session_date": ist_date(chain.snapshot_time).isoformat(),
                "next_expiry": chain.expiry,
                "spot": chain.spot,
            }
        )
        view = views.view(snapshot)
        assert view.chain is chain
        ctx = EngineContext(settings, snapshot, ModelBook(), None, {})
        out.append((view, compute_seller(ctx, view)))
    assert len(out) > 120 and {v.chain.expiry for v, _ in out if v.chain} == {
        "2026-01-27",
        "2026-02-03",
        "2026-02-10",
    }
    return tuple(out)


def items(rows: Sequence[Struct]) -> Rows:
    return [list(asdict(row).items()) for row in rows]


def optional_round(value: float | None, ndigits: int) -> float | None:
    return None if value is None else round(value, ndigits)


def band(strikes: tuple[float, ...], spot: float) -> list[int]:
    return [i for i, k in enumerate(strikes) if abs(k / spot - 1) <= CHART_BAND]


def plain_greeks(chain: OptionChain) -> Rows:
    g = chain_greeks(chain.quotes, chain.spot, years_to_expiry(chain))
    c, p = g.call, g.put
    return [
        [
            ("strike", g.strikes[i]),
            ("iv", c.iv[i]),
            ("iv_published", c.iv_published[i]),
            ("call_delta", c.delta[i]),
            ("put_delta", p.delta[i]),
            ("gamma_per_point", c.gamma_per_point[i]),
            ("vega_points_per_vol_point", c.vega_points_per_vol_point[i]),
            ("theta_points_per_day", c.theta_points_per_day[i]),
            ("reason", c.reason[i]),
        ]
        for i in band(g.strikes, chain.spot)
    ]


def plain_gex(chain: OptionChain) -> Rows:
    gex = gamma_exposure(
        chain_greeks(chain.quotes, chain.spot, years_to_expiry(chain)), chain.quotes
    )
    return [
        [
            ("strike", gex.strikes[i]),
            ("call_rupees_per_1pct", optional_round(gex.call_gex_rupees_per_1pct[i], 0)),
            ("put_rupees_per_1pct", optional_round(gex.put_gex_rupees_per_1pct[i], 0)),
            ("net_rupees_per_1pct", optional_round(gex.net_gex_rupees_per_1pct[i], 0)),
        ]
        for i in band(gex.strikes, chain.spot)
    ]


def plain_buildup(chain: OptionChain, since: OptionChain) -> tuple[dict[str, Any], Rows]:
    b = buildup_between(chain.quotes, since.quotes)
    counts = {
        side: {str(k): n for k, n in Counter(getattr(b, side).buildup).items() if k is not None}
        for side in ("call", "put")
    }

    def text(label: object) -> str | None:
        return None if label is None else str(label)

    rows = [
        [
            ("strike", b.strikes[i]),
            ("call", text(b.call.buildup[i])),
            ("put", text(b.put.buildup[i])),
            ("call_oi_change_units", b.call.oi_change_units[i]),
            ("put_oi_change_units", b.put.oi_change_units[i]),
            ("call_price_change_points", optional_round(b.call.price_change_points[i], 2)),
            ("put_price_change_points", optional_round(b.put.price_change_points[i], 2)),
        ]
        for i in band(b.strikes, chain.spot)
    ]
    return counts, rows


def plain_oi(chain: OptionChain, previous: OptionChain | None) -> Rows:
    before = {} if previous is None else {q.strike: q for q in previous.quotes}
    rows = []
    for q in chain.quotes:
        if abs(q.strike / chain.spot - 1) > CHART_BAND:
            continue
        old = before.get(q.strike)
        rows.append(
            [
                ("strike", q.strike),
                ("ce_oi", q.ce_oi),
                ("pe_oi", q.pe_oi),
                ("ce_change", None if old is None else q.ce_oi - old.ce_oi),
                ("pe_change", None if old is None else q.pe_oi - old.pe_oi),
            ]
        )
    return rows


def plain_smile(smile: Smile, years: float) -> tuple[Rows, float | None, tuple[float | None, ...]]:
    """(chart points, ATM IV, (put strike, put IV, call strike, call IV) of the 25-delta skew)
    from the smile's points."""
    points = smile.points
    chart = [
        [("strike", p.strike), ("iv", p.iv), ("side", p.side), ("published", p.published)]
        for p in points
        if abs(p.log_moneyness) <= CHART_BAND
    ]
    atm = interpolated_atm_iv([p.strike for p in points], [p.iv for p in points], smile.forward)
    atm = None if atm is None else round(atm, 6)
    strikes = np.array([p.strike for p in points])
    sd = np.array([p.iv for p in points]) * math.sqrt(years)
    delta = ndtr((np.log(smile.forward / strikes) + 0.5 * sd * sd) / sd)
    puts = [i for i, p in enumerate(points) if p.side == "put"]
    calls = [i for i, p in enumerate(points) if p.side == "call"]
    if len(points) < 3 or not puts or not calls:
        return chart, atm, (None, None, None, None)
    put = points[puts[int(np.argmin(np.abs(delta[puts] - 1 + 0.25)))]]
    call = points[calls[int(np.argmin(np.abs(delta[calls] - 0.25)))]]
    return chart, atm, (put.strike, put.iv, call.strike, call.iv)


def plain_pcr(chain: OptionChain) -> list[float | None]:
    a = as_arrays(chain.quotes)
    close = np.abs(a.strike / chain.spot - 1) <= PCR_NEAR
    out: list[float | None] = []
    for mask in (np.ones(a.strike.shape, dtype=bool), close):
        for num, den in (
            (float(a.pe_oi[mask].sum()), float(a.ce_oi[mask].sum())),
            (float(np.nansum(a.pe_volume[mask])), float(np.nansum(a.ce_volume[mask]))),
        ):
            out.append(round(num / den, 4) if den > 0 else None)
    return [out[0], out[1], out[2], out[3]]


def test_the_chain_group_equals_its_plain_reading_on_the_real_replay() -> None:
    for view, data in replay():
        chain, group = view.chain, data.chain
        assert chain is not None and isinstance(group, ChainFresh)
        assert items(group.greeks.strikes) == plain_greeks(chain)
        assert items(group.gamma_exposure.by_strike) == plain_gex(chain)
        assert items(group.oi_by_strike) == plain_oi(chain, view.previous)
        pcr = group.pcr
        assert [pcr.oi, pcr.volume, pcr.oi_near_atm, pcr.volume_near_atm] == plain_pcr(chain)
        spans = ((view.previous, group.buildup.since_previous),)
        for since, span in (*spans, (view.previous_close, group.buildup.since_close)):
            if since is None:
                assert span is None
                continue
            assert span is not None
            counts, rows = plain_buildup(chain, since)
            assert to_builtins(span.counts) == counts
            assert items(span.by_strike) == rows
            assert span.since == ist_iso(since.snapshot_time)
        years = years_to_expiry(chain)
        smile = chain_smile(chain.quotes, chain.spot, years)
        assert smile is not None
        chart, atm, wings = plain_smile(smile, years)
        assert items(group.smile.points) == chart
        assert group.atm_iv.value == atm
        (target,) = [p for p in group.term_structure.expiries if p.expiry == chain.expiry]
        assert target.atm_iv == atm
        skew = group.delta_skew
        assert (skew.put_strike, skew.put_iv, skew.call_strike, skew.call_iv) == wings


def plain_zero_gamma(
    pairs: Sequence[tuple[ChainGreeks, Sequence[OptionQuote]]], range_pct: float, step_pct: float
) -> tuple[float | None, str | None, float]:
    """``ZERO_GAMMA_FORMULA`` on the whole grid at once."""
    spot = pairs[0][0].spot
    steps = round(range_pct / step_pct)
    grid = spot * (1 + step_pct * np.arange(-steps, steps + 1))
    total = total_gex_at(pairs, grid)
    at_spot = float(total[steps])
    if not np.any(total):
        return None, "no open interest with a gamma (no IVs)", at_spot
    levels = [float(grid[i]) for i in np.flatnonzero(total == 0)]
    for i in np.flatnonzero(np.sign(total[:-1]) * np.sign(total[1:]) < 0).tolist():
        lo, hi = float(total[i]), float(total[i + 1])
        levels.append(float(grid[i] + (grid[i + 1] - grid[i]) * lo / (lo - hi)))
    if not levels:
        side = "positive" if at_spot > 0 else "negative"
        return (
            None,
            f"total GEX stays {side} for spot within ±{range_pct:.0%} "
            + (f"({grid[0]:.2f} to {grid[-1]:.2f})"),
            at_spot,
        )
    return min(levels, key=lambda s: abs(s - spot)), None, at_spot


@pytest.mark.parametrize(
    ("range_pct", "step_pct"), [(ZERO_GAMMA_RANGE, ZERO_GAMMA_STEP), (0.05, 0.0002), (0.01, 0.001)]
)
def test_zero_gamma_from_spot_outwards_is_the_whole_grids(
    range_pct: float, step_pct: float
) -> None:
    """Finer steps search less far first, and a spot 3% off the chain's puts the crossing
    far below or above it: the widening on either side and the whole grid are taken."""
    searched = 0
    for view, _ in replay():
        chain = view.chain
        assert chain is not None
        g = chain_greeks(chain.quotes, chain.spot, years_to_expiry(chain))
        for shift in (0.97, 1.0, 1.03):
            pairs = [(replace(g, spot=g.spot * shift), chain.quotes)]
            zero = zero_gamma_level(pairs, range_pct, step_pct)
            expected = plain_zero_gamma(pairs, range_pct, step_pct)
            assert (zero.level, zero.reason, zero.total_gex_at_spot_rupees_per_1pct) == expected
            searched += zero.level is not None
    assert searched > 100


def plain_implied_vol(
    price: np.ndarray,
    forward: np.ndarray,
    strike: np.ndarray,
    years: np.ndarray,
    is_call: np.ndarray,
) -> np.ndarray:
    """``skew.implied_vol``'s Newton-in-a-bracket steps, written plainly."""
    intrinsic = np.where(is_call, np.maximum(forward - strike, 0), np.maximum(strike - forward, 0))
    valid = (price > intrinsic) & (price < np.where(is_call, forward, strike)) & (years > 0)
    out = np.full(price.shape, np.nan)
    where = np.flatnonzero(valid)
    k, f, root = strike[where], forward[where], np.sqrt(years[where])
    target = np.where(is_call[where], price[where], price[where] + f - k)
    lo, hi = np.full(where.size, 1e-4), np.full(where.size, 5.0)
    vol = np.clip(price[where] / (0.4 * f * root), 0.05, 2.0)
    log_fk, vega_scale = np.log(f / k), f * root / math.sqrt(2 * math.pi)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for _ in range(60):
            sd = vol * root
            d1 = log_fk / sd + 0.5 * sd
            diff = f * ndtr(d1) - k * ndtr(d1 - sd) - target
            hi, lo = np.where(diff > 0, vol, hi), np.where(diff > 0, lo, vol)
            step = vol - diff / (vega_scale * np.exp(-0.5 * d1 * d1))
            new = np.where((step > lo) & (step < hi), step, 0.5 * (lo + hi))
            moving = np.abs(new - vol) >= 1e-8
            out[where[~moving]] = new[~moving]
            where, k, f, root, target, lo, hi, log_fk, vega_scale, vol = (
                column[moving]
                for column in (where, k, f, root, target, lo, hi, log_fk, vega_scale, new)
            )
            if not where.size:
                break
    out[where] = vol
    return out


def test_the_iv_solver_is_its_plain_loop_bit_for_bit() -> None:
    columns: dict[str, list[np.ndarray]] = {k: [] for k in ("p", "f", "k", "t", "c")}
    for view, _ in replay():
        chain = view.chain
        assert chain is not None
        a = as_arrays(chain.quotes)
        forward = parity_forward_of(a, chain.spot) or chain.spot
        for is_call, ltp in ((True, a.ce_ltp), (False, a.pe_ltp)):
            priced = np.isfinite(ltp)
            columns["p"].append(ltp[priced])
            columns["k"].append(a.strike[priced])
            columns["c"].append(np.full(priced.sum(), is_call))
            columns["f"].append(np.full(priced.sum(), forward))
            columns["t"].append(np.full(priced.sum(), years_to_expiry(chain)))
    p, f, k, t, c = (np.concatenate(columns[n]) for n in ("p", "f", "k", "t", "c"))
    assert p.size > 20_000
    solved = implied_vol(p, f, k, t, c)
    assert np.isfinite(solved).sum() > 15_000
    assert np.array_equal(solved, plain_implied_vol(p, f, k, t, c), equal_nan=True)


@pytest.mark.parametrize("step", [2, 7])
def test_the_solver_does_not_depend_on_its_batch(step: int) -> None:
    view, _ = replay()[5]
    chain = view.chain
    assert chain is not None
    a = as_arrays(chain.quotes)
    forward = np.full(a.strike.size, parity_forward_of(a, chain.spot) or chain.spot)
    years = np.full(a.strike.size, years_to_expiry(chain))
    calls = np.ones(a.strike.size, dtype=bool)
    price = np.where(np.isfinite(a.ce_ltp), a.ce_ltp, 1.0)
    whole = implied_vol(price, forward, a.strike, years, calls)
    part = slice(0, None, step)
    alone = implied_vol(price[part], forward[part], a.strike[part], years[part], calls[part])
    assert np.array_equal(whole[part], alone, equal_nan=True)
