"""The volatility chain gate of docs/MODELS.md applied to the walk-forward figures of
``vol_chain``: per signal and variant, "model" and "as shipped" beside the VIX and straddle
baselines, the signal as shipped today and the control, the issue's floors, and the verdict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from services.trainer import vol_chain_variants as v
from services.trainer.vol_chain import (
    BASELINES,
    COVERAGE_TOLERANCE,
    MIN_EXPIRIES,
    MIN_SESSIONS,
    Signal,
    fit_variants,
    signals,
)
from services.trainer.vol_chain_data import ChainSessions, load_sessions
from services.trainer.vol_chain_scores import Comparison, compare
from services.trainer.vol_evaluation import dte_bucket, same_coverage_width

FLOOR = {"move": 0.05, "breach": 0.03}
CONTROL = {"move": "D0", "safe_range": "D0", "breach": "D0", "trap": "T0", "stress": "S0"}


def scored_rows(signal: Signal, table: pd.DataFrame, variant: str) -> np.ndarray:
    """Sessions the variant forecasts where every reference it is compared with is scored."""
    names = [variant, "today", *BASELINES, CONTROL[signal.name], v.CONTROLS.get(variant, variant)]
    rows = np.isfinite(table[names].to_numpy(float)).all(axis=1)
    if signal.target is not None:
        rows &= np.isfinite(signal.target)
    return rows


def _references(signal: str, variant: str) -> dict[str, list[str]]:
    """What a variant's forecasts are compared with: the better baseline, the signal as
    shipped today, the control and the chain variant it extends (if any)."""
    refs = {"better baseline": list(BASELINES), "shipped today": ["today"]}
    control = CONTROL[signal]
    if variant != control:
        refs["control"] = [control]
        parent = v.CONTROLS[variant]
        if parent != control:
            refs["extended variant"] = [parent]
    return refs


def comparisons(signal: Signal, table: pd.DataFrame, rows: np.ndarray, name: str) -> dict[str, Any]:
    """``name`` against each reference ("model": the references' models; "shipped": the
    references' as-shipped series where they have one)."""
    out: dict[str, Comparison] = {}
    shipped = name.endswith(" shipped")
    variant = name.removesuffix(" shipped")
    for label, refs in _references(signal.name, variant).items():
        named = [f"{r} shipped" if shipped and r in v.CONTROLS.values() else r for r in refs]
        out[label] = compare(table, rows, name, named, signal.name, signal.target)
    return out


def expiries_needed(c: Comparison, expiries: int) -> int | None:
    """At the observed improvement and spread, the expiries after which the interval's lower
    bound clears zero (the spread shrinking as 1/sqrt(n)); None when the improvement is not
    positive or the bound already clears zero."""
    if c.improvement <= 0 or c.above_zero():
        return None
    return math.ceil(expiries * ((c.improvement - c.interval[0]) / c.improvement) ** 2)


def _range_floor(g: pd.DataFrame, bounds: np.ndarray) -> dict[str, Any]:
    r = g["r"].to_numpy(float)
    inside = (bounds[:, 0] <= r) & (r <= bounds[:, 1])
    coverage = float(inside.mean())
    buckets = dte_bucket(g["days_to_expiry"])
    by_dte = {str(k): float(inside[(buckets == k).to_numpy()].mean()) for k in buckets.unique()}
    width = float(np.mean(bounds[:, 1] - bounds[:, 0]))
    vix = same_coverage_width(g, np.log(g["vix_upper"] / g["spot"]), coverage)
    straddle = same_coverage_width(g, g["straddle_sigma"], coverage)
    covered = [coverage, *by_dte.values()]
    return {
        "coverage": round(coverage, 4),
        "coverage_by_dte": {k: round(c, 4) for k, c in sorted(by_dte.items())},
        "mean_width_log": round(width, 5),
        "width_reduction_vs_vix_band": round(1 - width / vix, 4),
        "width_reduction_vs_straddle_band": round(1 - width / straddle, 4),
        "floor_coverage_088_092_everywhere": all(0.88 <= c <= 0.92 for c in covered),
        "floor_width_005_below_both": 1 - width / min(vix, straddle) >= 0.05,
    }


def floors(
    signal: Signal, g: pd.DataFrame, table: pd.DataFrame, rows: np.ndarray, name: str
) -> dict[str, Any]:
    """The issue's floor for ``name`` on ``rows``."""
    if signal.name in FLOOR:
        c = compare(table, rows, name, list(BASELINES), signal.name)
        return {f"floor_{FLOOR[signal.name]:.2f}_below_better": c.improvement >= FLOOR[signal.name]}
    if signal.name == "safe_range":
        return _range_floor(g[rows], signal.raw[name][rows])
    if signal.name == "trap":
        y = g.loc[rows, "trap_actual"].to_numpy(int)
        auc = float(roc_auc_score(y, signal.raw[name][rows]))
        skill = 1 - table.loc[rows, name].sum() / table.loc[rows, "vix"].sum()
        return {
            "auc": round(auc, 4),
            "brier_skill_vs_base_rate": round(float(skill), 4),
            "floor_auc_075_skill_010": auc >= 0.75 and skill >= 0.10,
        }
    assert signal.target is not None
    y = signal.target[rows]
    rho = {k: _rho(table.loc[rows, k].to_numpy(), y) for k in (name, "vix", "sigma20")}
    return {
        "spearman": round(rho[name], 4),
        "spearman_vix": round(rho["vix"], 4),
        "spearman_sigma20": round(rho["sigma20"], 4),
        "floor_above_vix_and_sigma20": rho[name] > max(rho["vix"], rho["sigma20"]),
    }


def _rho(x: np.ndarray, y: np.ndarray) -> float:
    return float(spearmanr(x, y)[0])


def _level(signal: Signal, table: pd.DataFrame, rows: np.ndarray, name: str) -> float:
    """Mean loss (stress: rho) of ``name`` on ``rows``."""
    if signal.target is None:
        return round(float(table.loc[rows, name].mean()), 6)
    return round(_rho(table.loc[rows, name].to_numpy(), signal.target[rows]), 4)


def verdict(
    sessions: int, expiries: int, shipped: dict[str, Comparison], coverage: float | None
) -> dict[str, Any]:
    reasons = []
    if sessions < MIN_SESSIONS or expiries < MIN_EXPIRIES:
        reasons.append(
            f"{sessions} sessions, {expiries} expiries: below the minimum "
            f"({MIN_SESSIONS}, {MIN_EXPIRIES})"
        )
    reasons += [f"vs {k}: interval reaches zero" for k, c in shipped.items() if not c.above_zero()]
    if coverage is not None and abs(coverage - v.COVERAGE) > COVERAGE_TOLERANCE:
        reasons.append(f"coverage {coverage:.3f} outside 0.87..0.93")
    return {"passes": not reasons, "reasons": reasons or ["every condition met"]}


def verdict_none(reason: str) -> dict[str, Any]:
    return {"passes": False, "reasons": [reason]}


def evaluate_variant(
    signal: Signal, g: pd.DataFrame, table: pd.DataFrame, variant: str
) -> dict[str, Any]:
    rows = scored_rows(signal, table, variant)
    sub = g[rows]
    expiries = int(sub["expiry"].nunique())
    if expiries < 2:
        reason = f"{int(rows.sum())} sessions, {expiries} expiries: nothing to score"
        return {"sessions": int(rows.sum()), "expiries": expiries, "gate": verdict_none(reason)}
    out: dict[str, Any] = {
        "sessions": int(rows.sum()),
        "expiries": expiries,
        "window": f"{sub['date'].min():%Y-%m-%d}..{sub['date'].max():%Y-%m-%d}",
        "live_share": round(float(signal.live[variant][rows].mean()), 4),
        "level": {
            k: _level(signal, table, rows, k)
            for k in (*BASELINES, "today", "core", variant, f"{variant} shipped")
            + (("sigma20",) if signal.name == "stress" else ())
        },
    }
    for kind, name in (("model", variant), ("shipped", f"{variant} shipped")):
        comps = comparisons(signal, table, rows, name)
        out[kind] = {
            **{
                f"vs {k}": {**c.to_dict(), "expiries_needed": expiries_needed(c, expiries)}
                for k, c in comps.items()
            },
            "floor": floors(signal, g, table, rows, name),
        }
        if kind == "shipped" and variant in v.CANDIDATES:
            coverage = out[kind]["floor"].get("coverage")
            out["gate"] = verdict(int(rows.sum()), expiries, comps, coverage)
    better = "vs better baseline"
    out["gate_cost"] = round(
        out["model"][better]["improvement"] - out["shipped"][better]["improvement"], 5
    )
    return out


def evaluate(cs: ChainSessions) -> dict[str, Any]:
    g = cs.sessions
    fitted = fit_variants(cs)
    result: dict[str, Any] = {}
    for name, signal in signals(cs, fitted).items():
        table = signal.table(g["expiry"])
        result[name] = {k: evaluate_variant(signal, g, table, k) for k in signal.variants}
    return result


def run_vol_chain(
    runs: Sequence[Path],
    chain_csv: Path,
    participants: Path,
    futures_csv: Path,
    end: str | None = None,
) -> dict[str, Any]:
    cs = load_sessions(runs, chain_csv, participants, futures_csv, end)
    g = cs.sessions
    scored = evaluate(cs)
    passed = [
        f"{k} {s}"
        for s, entry in scored.items()
        for k, e in entry.items()
        if e.get("gate", {}).get("passes")
    ]
    return {
        "window": f"{g['date'].min():%Y-%m-%d}..{g['date'].max():%Y-%m-%d}",
        "sessions": len(g),
        "expiries": int(g["expiry"].nunique()),
        "note": "improvement = 1 - loss / reference loss (stress: rho difference); 90 % "
        "intervals resampling whole expiries; gate: docs/MODELS.md 'Volatility chain gate'",
        "passes": passed,
        "signals": scored,
    }
