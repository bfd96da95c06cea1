"""Buyer section: breakout today and next 5 sessions, spike direction bias, gamma windows,
theta edge, buyer regime, breakout levels, environment wording, measured spike rate (pure)."""

from __future__ import annotations

import bisect
import math
from datetime import date, datetime
from typing import Literal

from shared.contract.document.base import Rate
from shared.contract.document.buyer import (
    BreakoutLevels,
    BreakoutNext,
    BreakoutToday,
    BuyerChain,
    BuyerChainFresh,
    BuyerData,
    BuyerRegime,
    Environment,
    GammaWindow,
    GammaWindows,
    NextDay,
    SpikeBias,
    ThetaEdge,
)
from shared.contract.document.chain import ChainUnavailable
from shared.contract.schemas import Provenance
from shared.features.intraday import BREAKOUT_ATR_FRACTION
from shared.market import calendar
from shared.market.calendar import SESSION_MINUTES
from shared.market.chain_view import ChainView
from shared.models.api import vix_regime
from shared.models.context import EngineContext
from shared.signals import fallbacks, labels, provenance, regimes
from shared.signals.chain import STRADDLE_FORMULA, StraddleMove, straddle_move
from shared.signals.safe_range import IMPLIED_MOVE_FORMULA, implied_move_points

NEXT_SESSIONS = 5
GAMMA_BLOCKS: tuple[str, ...] = tuple(
    f"{a // 60:02d}:{a % 60:02d}-{b // 60:02d}:{b % 60:02d}"
    for a, b in ((m, min(m + 30, 15 * 60 + 30)) for m in range(9 * 60 + 15, 15 * 60 + 30, 30))
)
LEVELS_FORMULA = "prior session high + 0.25*ATR14, prior session low - 0.25*ATR14"


def session_left(ctx: EngineContext) -> float:
    """Fraction of today's session still to trade (1 before the open / for daily snapshots)."""
    snap = ctx.snapshot
    if snap.kind != "intraday" or not snap.intraday:
        return 1.0
    minute = snap.intraday.get("minute_of_session") or 0.0
    return max(0.0, SESSION_MINUTES - 1 - minute) / SESSION_MINUTES


def prior_session(ctx: EngineContext) -> tuple[float, float, float]:
    """(high, low, close) of the session ``daily_as_of``: intraday features carry high and
    low; a daily snapshot rebuilds them from range_pct and close_location at its close."""
    snap, daily = ctx.snapshot, ctx.snapshot.daily
    intraday = snap.intraday or {}
    high, low = intraday.get("prior_high"), intraday.get("prior_low")
    if snap.kind == "intraday" and high and low:
        return float(high), float(low), snap.prev_close or snap.spot
    close, width = snap.spot, (daily.get("range_pct") or 0.0) * snap.spot
    low = close - (daily.get("close_location") or 0.5) * width
    return low + width, low, close


def breakout_levels(ctx: EngineContext) -> BreakoutLevels:
    high, low, _ = prior_session(ctx)
    atr = ctx.snapshot.daily.get("atr_14") or 0.0
    return BreakoutLevels(
        upper=round(high + BREAKOUT_ATR_FRACTION * atr, 2),
        lower=round(low - BREAKOUT_ATR_FRACTION * atr, 2),
        provenance=provenance.from_data(
            window=f"session {ctx.snapshot.daily_as_of}", formula=LEVELS_FORMULA
        ),
    )


def breakout_today(ctx: EngineContext, levels: BreakoutLevels) -> BreakoutToday:
    snap, intra = ctx.snapshot, ctx.snapshot.intraday or {}
    broken: Literal["up", "down"] | None = (
        "up"
        if intra.get("breakout_up") == 1.0
        else "down"
        if intra.get("breakout_down") == 1.0
        else None
    )
    if broken:
        return BreakoutToday(
            score=1.0,
            label="HIGH",
            broken=broken,
            provenance=provenance.from_data(
                window=f"session {snap.session_date} to {calendar.ist_date(snap.as_of)}",
                note=f"session range already broke the prior "
                f"{'high' if broken == 'up' else 'low'} by 0.25*ATR14",
            ),
        )
    out = ctx.once(
        "buyer.breakout.0",
        lambda: ctx.run_model("buyer", lambda m: float(m.breakout_probability(snap.daily, 0))),
    )
    if out.ok:  # the model conditions on the prior close only: a whole-session chance
        score, prov, basis = out.value, out.provenance, "whole session, as seen at the open"
    else:
        score = fallbacks.breakout_probability(
            snap.spot,
            levels.upper,
            levels.lower,
            fallbacks.daily_sigma(snap.daily),
            session_left(ctx),
        )
        prov = provenance.heuristic(out.problem or "", fallbacks.BREAKOUT_FORMULA)
        basis = "rest of today's session"
    return BreakoutToday(
        score=round(score, 4),
        label=labels.breakout_label(score),
        broken=None,
        basis=basis,
        provenance=prov,
    )


def sessions_after(day: date, count: int) -> list[date]:
    days = calendar.sessions()
    i = bisect.bisect_right(days, day)
    return list(days[i : i + count])


def breakout_next(ctx: EngineContext, levels: BreakoutLevels) -> BreakoutNext:
    snap = ctx.snapshot
    today = (
        calendar.to_date(snap.session_date)
        if snap.kind == "intraday"
        else sessions_after(calendar.to_date(snap.daily_as_of), 1)[0]
    )
    dates = sessions_after(today, NEXT_SESSIONS)
    out = ctx.once(
        "buyer.breakout.next",
        lambda: ctx.run_model(
            "buyer",
            lambda m: [
                float(m.breakout_probability(snap.daily, k)) for k in range(1, NEXT_SESSIONS + 1)
            ],
        ),
    )
    if out.ok:
        scores, prov = out.value, out.provenance
    else:
        _, _, close = prior_session(ctx)
        one = fallbacks.breakout_probability(
            close, levels.upper, levels.lower, fallbacks.daily_sigma(snap.daily), 1.0
        )
        scores = [one] * NEXT_SESSIONS
        prov = provenance.heuristic(
            f"{out.problem}; same level for every session", fallbacks.BREAKOUT_FORMULA
        )
    return BreakoutNext(
        days=[
            NextDay(day_offset=k, date=d.isoformat(), score=round(s, 4))
            for k, (d, s) in enumerate(zip(dates, scores, strict=True), start=1)
        ],
        provenance=prov,
    )


SPIKE_CLIMATOLOGY_NOTE = (
    "the spike-direction model showed no significant out-of-sample skill: this is the "
    "training window's share of up moves among spike sessions, not a forecast"
)


def spike_bias(ctx: EngineContext) -> SpikeBias:
    daily = ctx.snapshot.daily
    out = ctx.once(
        "buyer.spike",
        lambda: ctx.run_model(
            "buyer",
            lambda m: (
                float(m.spike_up_probability(daily)),
                m.spike_source(),
                m.ref.training_window,
            ),
        ),
    )
    if out.ok:
        up, source, window = out.value
        prov = out.provenance
        if source == "climatology":
            prov = provenance.climatology(
                provenance.amended(prov, window=window), SPIKE_CLIMATOLOGY_NOTE
            )
    else:
        up = 0.5
        prov = provenance.heuristic(
            f"{out.problem}; no information, symmetric", "P(up | spike) = P(down | spike)"
        )
    return SpikeBias(up_prob=round(up, 4), down_prob=round(1 - up, 4), provenance=prov)


def gamma_windows(ctx: EngineContext) -> GammaWindows:
    """The stats model's measured rates per half hour (the same all session: built once)."""
    return ctx.once("buyer.gamma_windows", lambda: _gamma_windows(ctx))


def _gamma_windows(ctx: EngineContext) -> GammaWindows:
    out = ctx.run_model("stats", lambda m: m.gamma_windows())
    if out.ok:
        rows = {row["block"]: row for row in out.value}
        window = next((r.get("window") for r in out.value if r.get("window")), None)
        return GammaWindows(
            windows=[
                GammaWindow(block=b, score=rows[b]["score"] if b in rows else None)
                for b in GAMMA_BLOCKS
            ],
            provenance=provenance.amended(out.provenance, window=window),
        )
    return GammaWindows(
        windows=[GammaWindow(block=b, score=None) for b in GAMMA_BLOCKS],
        provenance=provenance.heuristic(f"{out.problem}; no measured rates, none invented"),
    )


def fresh_straddle(view: ChainView | None) -> tuple[StraddleMove | None, str]:
    """The target expiry's ATM straddle from a fresh chain, or why the VIX is used instead."""
    if view is None or view.chain is None:
        if view is None:
            return None, "no option-chain source configured"
        return None, view.reason or "no fresh option chain"
    move = straddle_move(view.chain.quotes, view.chain.spot)
    if move is None:
        return None, f"chain of {view.chain.expiry} has no priced ATM straddle"
    taken = datetime.fromtimestamp(view.chain.snapshot_time, calendar.IST).isoformat()
    return move, f"chain of {view.chain.expiry} at {taken} ({view.chain.source})"


CORE_MOVE_FORMULA = (
    "E|ln(C_expiry/C_t)| = (w_core*exp(LHAR ln RV5 forecast)*sqrt(n/252) "
    "+ w_vix*VIX/100*sqrt(T/365))*mean|u|, weights fitted on the training window"
)
VIX_MOVE_FORMULA = "E|ln(C_expiry/C_t)| = VIX/100*sqrt(T/365)*sqrt(2/pi)"


def predicted_move(ctx: EngineContext) -> tuple[float, Provenance]:
    """Expected absolute log move to expiry: the seller volatility core's distribution where
    its validation beat the VIX-implied move, else that baseline; without a seller model,
    the buyer model, else a formula."""
    snap = ctx.snapshot
    sessions = snap.sessions_to_expiry + (session_left(ctx) if snap.kind == "intraday" else 0.0)
    chosen = ctx.once(
        "buyer.move_selection", lambda: ctx.run_model("seller", lambda m: m.selection("move"))
    )
    note = None
    if chosen.ok:
        sel = chosen.value
        note = (
            f"volatility core live={sel['live']} for the move: validation MAE "
            f"{sel['model_score']:.4g} vs {sel['baseline_score']:.4g} for {sel['baseline']}"
        )
        if sel["live"] == "model":
            out = ctx.run_model(
                "seller",
                lambda m: float(m.expected_abs_move(snap.daily, ctx.days_to_expiry, sessions)),
            )
            if out.ok:
                formula = f"{CORE_MOVE_FORMULA}; {labels.THETA_EDGE_FORMULA}"
                return out.value, provenance.amended(out.provenance, formula=formula, note=note)
        else:  # the core lost to its baseline: ship the baseline, the VIX-implied move
            vix = snap.vix if snap.vix is not None else snap.daily.get("vix")
            if vix is not None:
                move = vix / 100 * math.sqrt(ctx.days_to_expiry / 365) * math.sqrt(2 / math.pi)
                formula = f"{VIX_MOVE_FORMULA}; {labels.THETA_EDGE_FORMULA}"
                prov = ctx.model_provenance("seller", formula=formula)
                return move, provenance.amended(prov, source="formula", note=note)
    out = ctx.once(
        f"buyer.move.{snap.days_to_expiry}",
        lambda: ctx.run_model(
            "buyer", lambda m: float(m.predicted_move_to_expiry(snap.daily, snap.days_to_expiry))
        ),
    )
    if out.ok:
        prov = provenance.amended(out.provenance, formula=labels.THETA_EDGE_FORMULA)
        return out.value, provenance.amended(prov, note=note) if note else prov
    move = fallbacks.predicted_abs_move(snap.daily, sessions)
    prov = provenance.heuristic(
        out.problem or "", f"{fallbacks.MOVE_FORMULA}; {labels.THETA_EDGE_FORMULA}"
    )
    return move, prov


def theta_edge(
    ctx: EngineContext, vix: float, straddle: StraddleMove | None = None, why: str = ""
) -> ThetaEdge:
    """Predicted move to expiry against the market's: the ATM straddle (as a one-sd move)
    when a fresh chain has one, else the India VIX implied move; ``implied_basis`` says which."""
    snap = ctx.snapshot
    implied = implied_move_points(snap.spot, vix, ctx.days_to_expiry)
    basis: Literal["atm_straddle", "india_vix"] = "india_vix"
    implied_formula = IMPLIED_MOVE_FORMULA
    if straddle is not None:
        implied, basis = straddle.one_sd_points, "atm_straddle"
        implied_formula = f"{STRADDLE_FORMULA} ({why})"
    move, prov = predicted_move(ctx)
    predicted = snap.spot * (math.exp(move) - 1)
    score, label = labels.theta_edge(predicted, implied)
    return ThetaEdge(
        score=round(score, 4),
        label=label,
        predicted_move_points=round(predicted, 2),
        implied_move_points=round(implied, 2),
        implied_formula=implied_formula,
        implied_basis=basis,
        implied_basis_reason=why,
        provenance=prov,
    )


def chain_group(
    ctx: EngineContext, straddle: StraddleMove | None, why: str, levels: BreakoutLevels
) -> BuyerChain:
    """Breakout levels against the market's expected move: spot +/- the ATM straddle."""
    if straddle is None:
        return ChainUnavailable(reason=why, provenance=provenance.from_data(note=why))
    spot = ctx.snapshot.spot
    upper, lower = spot + straddle.move_points, spot - straddle.move_points
    return BuyerChainFresh(
        straddle_move_points=straddle.move_points,
        straddle_upper=round(upper, 2),
        straddle_lower=round(lower, 2),
        breakout_upper_beyond_straddle=levels.upper > upper,
        breakout_lower_beyond_straddle=levels.lower < lower,
        provenance=provenance.from_data(
            window=why, formula=f"spot +/- ATM straddle; {STRADDLE_FORMULA}"
        ),
    )


def compute_buyer(ctx: EngineContext, chain_view: ChainView | None = None) -> BuyerData:
    snap = ctx.snapshot
    vix = snap.vix if snap.vix is not None else snap.daily.get("vix")
    if vix is None:
        raise ValueError("snapshot has no India VIX")
    levels = breakout_levels(ctx)
    straddle, why = fresh_straddle(chain_view)
    today, edge = breakout_today(ctx, levels), theta_edge(ctx, float(vix), straddle, why)
    env_label, env_text = labels.environment(edge.label, today.score, snap.daily.get("vix_pct_252"))
    return BuyerData(
        breakout_today=today,
        breakout_next=breakout_next(ctx, levels),
        spike_direction_bias=spike_bias(ctx),
        gamma_windows=gamma_windows(ctx),
        theta_edge=edge,
        regime=BuyerRegime(
            label=regimes.buyer_regime(snap.daily),
            provenance=provenance.from_formula(regimes.BUYER_REGIME_FORMULA),
        ),
        breakout_levels=levels,
        environment=Environment(
            label=env_label,
            text=env_text,
            provenance=provenance.from_formula(
                "context from theta edge, breakout score and VIX percentile"
            ),
        ),
        historical_spike_rate=ctx.measured_rate("spike_rate", vix_regime(float(vix)), Rate),
        chain=chain_group(ctx, straddle, why, levels),
    )
