"""The chain's information as inputs to the volatility signals: each variant of docs/MODELS.md
("Volatility chain gate") fitted walk-forward on the chain sessions (``vol_chain_variants``),
scored beside the VIX and straddle baselines, the signals as shipped today, the core and the
control without chain inputs; "as shipped" after the per-refit gate; the gate's verdict on the
figures, nothing else.

``python -m services.trainer evaluate-vol-chain`` (``make evaluate-vol-chain``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import erfc

from services.trainer import vol_chain_variants as v
from services.trainer.vol_chain_data import ChainSessions
from services.trainer.vol_chain_scores import (
    compare,
    interval_score,
    ranks_within,
)

MIN_SESSIONS = 250
MIN_EXPIRIES = 60
FOLD_MIN_SESSIONS = 150
FOLD_MIN_EXPIRIES = 30
COVERAGE_TOLERANCE = 0.03
BASELINES = ("vix", "straddle")  # every signal's two market baselines (trap: "vix" = base rate)


@dataclass
class Signal:
    """One signal's forecasts: ``raw[name]`` per session ((n, 2) log bounds for the range;
    per strike row for the breach curve) and ``loss`` from raw to a per-session loss (the
    breach curve: the mean over the session's strikes; stress: the score itself)."""

    name: str
    variants: tuple[str, ...]
    raw: dict[str, np.ndarray]
    loss: Callable[[np.ndarray], np.ndarray]
    target: np.ndarray | None = None  # stress: ln RV5
    live: dict[str, np.ndarray] = field(default_factory=dict)  # per variant, per session

    def table(self, expiry: pd.Series) -> pd.DataFrame:
        return pd.DataFrame(
            {"expiry": expiry.to_numpy(), **{k: self.loss(r) for k, r in self.raw.items()}}
        )


def _move_signal(g: pd.DataFrame, scale: dict[str, pd.DataFrame]) -> Signal:
    actual = np.abs(g["r"].to_numpy(float))
    raw = {
        "vix": g["vix_move"].to_numpy(float),
        "straddle": g["straddle_move"].to_numpy(float),
        "today": g["shipped_move"].to_numpy(float),
        "core": g["predicted_move"].to_numpy(float),
        **{k: s["move"].to_numpy(float) for k, s in scale.items() if k in v.SCALE_VARIANTS},
    }
    return Signal("move", tuple(v.SCALE_VARIANTS), raw, lambda m: np.abs(m - actual))


def _log_bounds(g: pd.DataFrame, lower: str, upper: str) -> np.ndarray:
    spot = g["spot"].to_numpy(float)
    return np.column_stack([np.log(g[lower] / spot), np.log(g[upper] / spot)])


def _range_signal(g: pd.DataFrame, scale: dict[str, pd.DataFrame]) -> Signal:
    r = g["r"].to_numpy(float)
    raw = {
        "vix": _log_bounds(g, "vix_lower", "vix_upper"),
        "straddle": scale["straddle"][["lo", "hi"]].to_numpy(float),
        "today": _log_bounds(g, "shipped_lower", "shipped_upper"),
        "core": _log_bounds(g, "safe_lower", "safe_upper"),
        **{k: s[["lo", "hi"]].to_numpy(float) for k, s in scale.items() if k in v.SCALE_VARIANTS},
    }
    return Signal(
        "safe_range", tuple(v.SCALE_VARIANTS), raw, lambda b: interval_score(b[:, 0], b[:, 1], r)
    )


def _breach_signal(g: pd.DataFrame, strikes: pd.DataFrame, fitted: dict[str, v.Fitted]) -> Signal:
    y = strikes["breached"].to_numpy(float)
    row = strikes["row"].to_numpy()
    distance = np.abs(strikes["log_strike"].to_numpy(float)) / strikes["straddle_sigma"]
    live = (strikes["live_expiry_range"] == "model").to_numpy()
    raw = {
        "vix": strikes["probability_lognormal"].to_numpy(float),
        "straddle": 0.5 * erfc(distance.to_numpy(float) / math.sqrt(2)),
        "today": np.where(live, strikes["probability"], strikes["probability_lognormal"]),
        "core": strikes["probability"].to_numpy(float),
        **{k: v.breach_probabilities(strikes, fitted[k]) for k in v.SCALE_VARIANTS},
    }

    def loss(p: np.ndarray) -> np.ndarray:
        sq = (p - y) ** 2
        total = np.bincount(row, weights=np.nan_to_num(sq), minlength=len(g))
        missing = np.bincount(row, weights=np.isnan(sq).astype(float), minlength=len(g))
        counted = np.bincount(row, minlength=len(g))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where((missing == 0) & (counted > 0), total / counted, np.nan)

    return Signal("breach", tuple(v.SCALE_VARIANTS), raw, loss)


def _trap_signal(g: pd.DataFrame, fitted: dict[str, v.Fitted]) -> Signal:
    y = g["trap_actual"].to_numpy(float)
    raw = {
        "vix": g["trap_base_rate"].to_numpy(float),
        "straddle": fitted["trap straddle"].forecast,
        "today": g["shipped_trap"].to_numpy(float),
        "core": g["trap_probability"].to_numpy(float),
        **{k: fitted[k].forecast for k in v.TRAP_VARIANTS},
    }
    return Signal("trap", tuple(v.TRAP_VARIANTS), raw, lambda p: (p - y) ** 2)


def _stress_signal(g: pd.DataFrame, fitted: dict[str, v.Fitted]) -> Signal:
    raw = {
        "vix": g["vix"].to_numpy(float),
        "straddle": g["straddle_iv"].to_numpy(float),
        "sigma20": g["sigma20"].to_numpy(float),
        "today": g["shipped_stress"].to_numpy(float),
        "core": g["stress_score"].to_numpy(float),
        **{k: fitted[k].forecast for k in v.STRESS_VARIANTS},
    }
    target = np.log(g["rv_next5"].to_numpy(float))
    return Signal("stress", tuple(v.STRESS_VARIANTS), raw, lambda s: s, target)


def fit_variants(cs: ChainSessions) -> dict[str, v.Fitted]:
    g = cs.sessions
    variants: dict[str, v.ScaleVariant | v.TrapVariant | v.StressVariant] = {
        **v.SCALE_VARIANTS,
        "straddle": v.STRADDLE_BAND,
        **v.TRAP_VARIANTS,
        "trap straddle": v.TRAP_STRADDLE,
        **v.STRESS_VARIANTS,
    }
    return {name: v.walk_forward(g, variant) for name, variant in variants.items()}


def signals(cs: ChainSessions, fitted: dict[str, v.Fitted]) -> dict[str, Signal]:
    g = cs.sessions
    scale = {k: v.scale_signals(fitted[k]) for k in (*v.SCALE_VARIANTS, "straddle")}
    strikes = cs.strikes.assign(row=pd.Index(g["date"]).get_indexer(cs.strikes["date"]))
    out = [
        _move_signal(g, scale),
        _range_signal(g, scale),
        _breach_signal(g, strikes, fitted),
        _trap_signal(g, fitted),
        _stress_signal(g, fitted),
    ]
    for s in out:
        s.live = {k: live_blocks(g, s, k, fitted[k]) for k in s.variants}
        for k in s.variants:
            s.raw[f"{k} shipped"] = as_shipped(s, k, strikes["row"].to_numpy())
    return {s.name: s for s in out}


def _finite(a: np.ndarray) -> np.ndarray:
    return np.isfinite(a) if a.ndim == 1 else np.isfinite(a).all(axis=1)


def fold_gate(table: pd.DataFrame, rows: np.ndarray, variant: str, signal: Signal) -> bool:
    """The per-refit rule: on ``rows`` (the variant's settled forecasts before the refit),
    at least FOLD_MIN_SESSIONS sessions and FOLD_MIN_EXPIRIES expiries, and the 90 %
    interval of its improvement over the signal as shipped today above zero."""
    if rows.sum() < FOLD_MIN_SESSIONS or table.loc[rows, "expiry"].nunique() < FOLD_MIN_EXPIRIES:
        return False
    return compare(table, rows, variant, ["today"], signal.name, signal.target).above_zero()


def live_blocks(g: pd.DataFrame, signal: Signal, variant: str, fitted: v.Fitted) -> np.ndarray:
    """Per session: whether the variant is live there (its refit's fold gate passed)."""
    table = signal.table(g["expiry"])
    scored = np.isfinite(table[variant].to_numpy()) & np.isfinite(table["today"].to_numpy())
    if signal.target is not None:
        scored &= np.isfinite(signal.target)
    live = np.zeros(len(g), dtype=bool)
    for start in np.unique(fitted.fold[fitted.fold >= 0]):
        rows = v.training_rows(g, int(start)) & scored
        if fold_gate(table, rows, variant, signal):
            live[fitted.fold == start] = True
    return live


def as_shipped(signal: Signal, variant: str, strike_rows: np.ndarray) -> np.ndarray:
    """The variant where its refit's gate passed, the signal as shipped today elsewhere (NaN
    where the variant has no forecast). Stress scores switch as rank shares among each
    series' own forecasts (the two are on different scales)."""
    model, today = signal.raw[variant], signal.raw["today"]
    live = signal.live[variant]
    if signal.name == "breach":
        live = live[strike_rows]
    if signal.name == "stress":
        rows = _finite(model) & _finite(today)
        model, today = ranks_within(model, rows), ranks_within(today, rows)
    mask = live[:, None] if model.ndim == 2 else live
    out = np.where(mask, model, today)
    if signal.name == "breach":
        return np.where(np.isfinite(model), out, np.nan)
    return np.where(_finite(model)[:, None] if model.ndim == 2 else _finite(model), out, np.nan)
