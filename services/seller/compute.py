"""Seller section: safe range, max pain, volatility trap, skew, expiry stress, breach curve,
seller flag, measured hit rate (pure)."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

import numpy as np

from shared.calendar import IST, daily_close_time, to_date
from shared.compute import EngineContext, run_batched
from shared.features.daily import SEQUENCE_FEATURES
from shared.models.api import vix_regime
from shared.models.seller import breach_inputs
from shared.schemas import OptionChain
from shared.signals import fallbacks, labels, provenance
from shared.signals.breach import (
    LOGNORMAL_BREACH_FORMULA,
    breach_strikes,
    lognormal_breach_probability,
)
from shared.signals.max_pain import MAX_PAIN_FORMULA, compute_max_pain
from shared.signals.safe_range import SAFE_RANGE_FORMULA, safe_range, symmetric_normal_z
from shared.signals.skew import (
    CHAIN_SKEW_FORMULA,
    RETURN_SKEW_FORMULA,
    SECONDS_PER_YEAR,
    chain_skew,
    return_distribution_skew,
)

SKEW_WING = 0.02  # OTM distance of the skew strikes, as a fraction of the forward


def iso(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, IST).isoformat()


def current_vix(ctx: EngineContext) -> float:
    vix = ctx.snapshot.vix if ctx.snapshot.vix is not None else ctx.snapshot.daily.get("vix")
    if vix is None:
        raise ValueError("snapshot has no India VIX")
    return float(vix)


def safe_range_group(ctx: EngineContext, regime: str) -> dict[str, Any]:
    snap, days = ctx.snapshot, ctx.days_to_expiry
    out = ctx.run_model("stats", lambda m: m.safe_range_z(regime))
    if out.ok:
        z_lower, z_upper, coverage = out.value
        prov = {**out.provenance, "formula": SAFE_RANGE_FORMULA}
    else:
        coverage = ctx.settings.coverage_target
        z_lower = z_upper = symmetric_normal_z(coverage)
        prov = provenance.heuristic(
            f"{out.problem}; symmetric normal z, not calibrated", SAFE_RANGE_FORMULA
        )
    lower, upper = safe_range(snap.spot, current_vix(ctx), days, z_lower, z_upper)
    return {
        "lower": round(lower, 2),
        "upper": round(upper, 2),
        "coverage_target": coverage,
        "expiry": snap.next_expiry,
        "days_to_expiry": snap.days_to_expiry,
        "z_lower": round(float(z_lower), 4),
        "z_upper": round(float(z_upper), 4),
        "provenance": prov,
    }


def max_pain_group(chain: OptionChain | None) -> dict[str, Any]:
    if chain is None:
        reason = "no option chain at or before this snapshot for an unexpired weekly expiry"
        return {"strike": None, "reason": reason, "provenance": provenance.from_data(note=reason)}
    tolerance = 0.02
    result = compute_max_pain(chain.quotes, tolerance=tolerance)
    if result is None:
        reason = f"option chain of {iso(chain.snapshot_time)} carries no open interest"
        return {"strike": None, "reason": reason, "provenance": provenance.from_data(note=reason)}
    return {
        "strike": result.strike,
        "lower": result.lower,
        "upper": result.upper,
        "chain_as_of": iso(chain.snapshot_time),
        "expiry": chain.expiry,
        "provenance": {
            **provenance.from_data(window=f"chain {iso(chain.snapshot_time)}"),
            "formula": MAX_PAIN_FORMULA.format(tolerance=tolerance),
        },
    }


def trap_group(ctx: EngineContext) -> dict[str, Any]:
    daily = ctx.snapshot.daily
    out = ctx.once(
        "seller.trap", lambda: ctx.run_model("seller", lambda m: m.trap_probability(daily))
    )
    if out.ok:
        score, prov = float(out.value), out.provenance
    else:
        score = fallbacks.trap_score(daily)
        prov = provenance.heuristic(out.problem or "", fallbacks.TRAP_FORMULA)
    return {
        "score": None if score is None else round(score, 4),
        "label": None if score is None else labels.trap_label(score),
        "iv_percentile": daily.get("vix_pct_252"),
        "rv_percentile": daily.get("rv_pct_252"),
        "provenance": prov,
    }


def stress_group(ctx: EngineContext) -> dict[str, Any]:
    daily = ctx.snapshot.daily
    out = ctx.once(
        "seller.stress", lambda: ctx.run_model("seller", lambda m: m.stress_probabilities(daily))
    )
    if out.ok:
        probs, prov = out.value, {**out.provenance, "formula": labels.STRESS_FORMULA}
    else:
        probs = fallbacks.stress_probabilities(daily)
        prov = provenance.heuristic(out.problem or "", fallbacks.STRESS_FORMULA)
    if probs is None:
        return {"score": None, "label": None, "probabilities": None, "provenance": prov}
    score = labels.stress_score(probs)
    return {
        "score": round(score, 4),
        "label": labels.stress_label(score),
        "probabilities": {k: round(float(probs[k]), 4) for k in ("low", "medium", "high")},
        "provenance": prov,
    }


def skew_group(ctx: EngineContext, chain: OptionChain | None) -> dict[str, Any]:
    if chain is not None:
        years = (daily_close_time(to_date(chain.expiry)) - chain.snapshot_time) / SECONDS_PER_YEAR
        skew = chain_skew(chain.quotes, years, wing=SKEW_WING)
        if skew is not None:
            return {
                "put": skew.put,
                "call": skew.call,
                "net": skew.net,
                "atm_iv": skew.atm_iv,
                "method": "chain_iv",
                "provenance": {
                    **provenance.from_data(window=f"chain {iso(chain.snapshot_time)}"),
                    "formula": CHAIN_SKEW_FORMULA.format(d=SKEW_WING),
                },
            }
    if ctx.sequence is not None:
        returns = ctx.sequence[:, SEQUENCE_FEATURES.index("ret_1")].tolist()
        skew = return_distribution_skew(returns)
        if skew is not None:
            window = f"{len(returns)} sessions to {ctx.snapshot.daily_as_of}"
            return {
                "put": skew.put,
                "call": skew.call,
                "net": skew.net,
                "method": "return_distribution",
                "provenance": {
                    **provenance.from_data(window=window),
                    "formula": RETURN_SKEW_FORMULA,
                },
            }
    reason = "no usable option chain and no 60-session return sequence"
    return {
        "put": None,
        "call": None,
        "net": None,
        "method": None,
        "provenance": provenance.from_data(note=reason),
    }


BREACH = "seller.breach"  # key of the batched breach-model answer of a snapshot


def breach_model_probabilities(model: Any, contexts: list[EngineContext]) -> list[list[float]]:
    """The breach model over every strike of every snapshot: one matrix, one model call."""
    rows, sizes = [], []
    for ctx in contexts:
        snap = ctx.snapshot
        strikes = [s.strike for s in breach_strikes(snap.spot)]
        rows.append(breach_inputs(snap.daily, snap.spot, strikes, snap.days_to_expiry))
        sizes.append(len(strikes))
    probs = model.breach_probabilities(np.concatenate(rows)).tolist()
    bounds = np.cumsum([0, *sizes]).tolist()
    return [probs[a:b] for a, b in itertools.pairwise(bounds)]


def breach_group(ctx: EngineContext) -> dict[str, Any]:
    snap, vix, days = ctx.snapshot, current_vix(ctx), ctx.days_to_expiry
    strikes = breach_strikes(snap.spot)
    out = ctx.batch_output(BREACH, "seller", breach_model_probabilities)
    if out.ok:
        probs, prov = out.value, out.provenance
    else:
        probs = [lognormal_breach_probability(snap.spot, s.strike, vix, days) for s in strikes]
        prov = provenance.heuristic(out.problem or "", LOGNORMAL_BREACH_FORMULA)
    points = [
        {
            "strike": s.strike,
            "distance_points": s.distance_points,
            "distance_pct": s.distance_pct,
            "side": s.side,
            "probability": round(p, 4),
        }
        for s, p in zip(strikes, probs)
    ]
    return {"points": points, "provenance": prov}


def compute_seller(ctx: EngineContext, chain: OptionChain | None) -> dict[str, Any]:
    regime = vix_regime(current_vix(ctx))
    trap, stress = trap_group(ctx), stress_group(ctx)
    flag, reasons = (
        labels.seller_flag(
            trap["label"], stress["label"], trap["iv_percentile"], trap["rv_percentile"]
        )
        if trap["label"] and stress["label"]
        else (None, ["trap or stress unavailable"])
    )
    return {
        "safe_range": safe_range_group(ctx, regime),
        "max_pain": max_pain_group(chain),
        "trap": trap,
        "skew": skew_group(ctx, chain),
        "expiry_stress": stress,
        "breach_probabilities": breach_group(ctx),
        "seller_flag": {
            "label": flag,
            "reasons": reasons,
            "provenance": provenance.from_formula(labels.SELLER_FLAG_FORMULA),
        },
        "historical_hit_rate": ctx.measured_rate("hit_rate", regime),
        "regime": {
            "label": regime,
            "provenance": provenance.from_formula("India VIX < 13 LOW, < 20 NORMAL, else HIGH"),
        },
    }


def compute_seller_batch(
    contexts: list[EngineContext], chains: list[OptionChain | None]
) -> list[dict[str, Any]]:
    """``compute_seller`` of each snapshot, the breach model called once for the batch."""
    run_batched(contexts, BREACH, "seller", breach_model_probabilities)
    return [compute_seller(ctx, chain) for ctx, chain in zip(contexts, chains, strict=True)]
