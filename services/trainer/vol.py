"""Fitting the volatility core (shared/models/volatility.py) on one training window.

``fit_core`` fits the HAR head by least squares, the blend of the head with India VIX that
scales the move to expiry (least squares on |ln(C_expiry/C_t)|), the trap's logistic link
(maximum likelihood on the trap event) and measures every empirical distribution the core
needs, all from the same window; ``VolTargets`` holds the labels, each NaN where its horizon
runs past the window (so a cut window never sees beyond its own end). Nothing here has a
tuning knob: every weight is fitted on the window's own past.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from services.trainer.data import TrainingData
from shared.models import labels
from shared.models.api import vix_regime
from shared.models.volatility import (
    DTE_BUCKETS,
    HAR_INPUTS,
    POOLED,
    QUANTILE_LEVELS,
    blend_scale,
    dte_bucket,
    har_design,
)

TRAP_SESSIONS = 5
MIN_TABLE_SAMPLES = 150  # a regime / bucket table with fewer samples falls back to pooled
RIDGE = 1e-6


@dataclass
class VolTargets:
    """Per session row: the targets and the context the calibrations are split by."""

    log_rv5: np.ndarray  # ln realised vol of sessions t+1..t+5 (annualised, zero-mean)
    rv_expiry: np.ndarray  # realised vol from t+1 to the next expiry (annualised)
    expiry_return: np.ndarray  # ln(C_expiry / C_t)
    sessions_to_expiry: np.ndarray  # expiry row - t (>= 1: a close targets the next expiry)
    days_to_expiry: np.ndarray  # calendar days
    vix: np.ndarray
    regime: np.ndarray
    raw: np.ndarray  # (rows, len(HAR_INPUTS)) the HAR inputs as the engines hold them
    har_x: np.ndarray  # (rows, 11) LHAR design

    @classmethod
    def of(cls, data: TrainingData) -> VolTargets:
        close, vix = data.frame["close"], data.frame["vix"].to_numpy(float)
        with np.errstate(divide="ignore"):
            log_rv5 = np.log(labels.forward_realized_vol(close, TRAP_SESSIONS).to_numpy())
        log_rv5[~np.isfinite(log_rv5)] = np.nan
        pos = labels.expiry_positions(close.index)
        rows = np.arange(len(close))
        n = np.where(pos >= 0, pos - rows, -1).astype(float)
        n[n < 0] = np.nan
        return cls(
            log_rv5=log_rv5,
            rv_expiry=labels.realized_vol_to_expiry(close).to_numpy(),
            expiry_return=labels.expiry_log_return(close).to_numpy(),
            sessions_to_expiry=n,
            days_to_expiry=data.features["days_to_expiry"].to_numpy(float),
            vix=vix,
            regime=np.asarray([vix_regime(v if np.isfinite(v) else None) for v in vix]),
            raw=(raw := data.features[list(HAR_INPUTS)].to_numpy(float)),
            har_x=har_design(raw),
        )

    def subset(self, rows: np.ndarray) -> VolTargets:
        return VolTargets(**{k: v[rows] for k, v in self.__dict__.items()})

    def __len__(self) -> int:
        return len(self.vix)

    def inputs(self, rows: np.ndarray) -> list[dict[str, float]]:
        """The HAR inputs of ``rows`` as feature mappings (what the core is called with)."""
        return [dict(zip(HAR_INPUTS, v, strict=True)) for v in self.raw[rows]]

    def trap(self) -> np.ndarray:
        """1 where RV5 > VIX/100, NaN where unknown."""
        with np.errstate(invalid="ignore", divide="ignore"):
            y = (self.log_rv5 > np.log(self.vix / 100)).astype(float)
        y[~np.isfinite(self.log_rv5) | ~(self.vix > 0)] = np.nan
        return y


def fit_har(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares HAR coefficients (a tiny ridge keeps a short window well posed)."""
    ok = np.isfinite(x).all(axis=1) & np.isfinite(y)
    if ok.sum() < 50:
        raise ValueError(f"HAR needs at least 50 complete sessions, got {int(ok.sum())}")
    xo, yo = x[ok], y[ok]
    penalty = RIDGE * len(yo) * np.eye(x.shape[1])
    penalty[0, 0] = 0.0
    return np.linalg.solve(xo.T @ xo + penalty, xo.T @ yo)


def _quantiles(values: np.ndarray) -> list[float]:
    return [float(q) for q in np.quantile(values, QUANTILE_LEVELS)]


def _tables(values: np.ndarray, keys: list[np.ndarray], reduce: Any = _quantiles) -> dict[str, Any]:
    """``reduce`` of ``values`` pooled and per distinct key of each key array (a key with
    fewer than MIN_TABLE_SAMPLES samples is left out: the reader falls back)."""
    ok = np.isfinite(values)
    out: dict[str, Any] = {POOLED: reduce(values[ok])}
    for key_array in keys:
        for key in np.unique(key_array[ok]):
            sel = ok & (key_array == key)
            if sel.sum() >= MIN_TABLE_SAMPLES:
                out[str(key)] = reduce(values[sel])
    return out


def _legs(t: VolTargets, m: np.ndarray) -> np.ndarray:
    """(rows, 2): the core's and India VIX's move scales to expiry (``blend_scale`` with
    unit weights on one leg each); NaN on expiry day and past the data."""
    n = np.where(t.sessions_to_expiry >= 1, t.sessions_to_expiry, np.nan)
    args = (np.exp(m), t.vix, n, t.days_to_expiry)
    return np.column_stack(
        [
            blend_scale({"core": 1.0, "vix": 0.0}, *args),
            blend_scale({"core": 0.0, "vix": 1.0}, *args),
        ]
    )


def fit_move_blend(t: VolTargets, m: np.ndarray) -> dict[str, float]:
    """Weights (w_core, w_vix) of the two move scales whose sum best predicts
    |ln(C_expiry/C_t)| in least squares: a forecast combination of the core with the
    market's implied move, fitted on the window."""
    x, y = _legs(t, m), np.abs(t.expiry_return)
    ok = np.isfinite(x).all(axis=1) & np.isfinite(y)
    if ok.sum() < 50:
        raise ValueError(f"move blend needs at least 50 settled expiries, got {int(ok.sum())}")
    w = np.linalg.lstsq(x[ok], y[ok], rcond=None)[0]
    return {"core": float(w[0]), "vix": float(w[1])}


def scaled_expiry_move(t: VolTargets, m: np.ndarray, blend: dict[str, float]) -> np.ndarray:
    """u = ln(C_expiry/C_t) / the blended move scale."""
    return t.expiry_return / (_legs(t, m) @ np.array([blend["core"], blend["vix"]]))


def fit_trap_link(t: VolTargets, m: np.ndarray) -> list[float]:
    """(a, b) of P(RV5 > VIX) = 1 / (1 + exp(-(a + b * (m - ln(VIX/100))))): the residual
    distribution of ln RV5 around m taken as logistic, fitted by maximum likelihood on the
    trap event itself (monotone in the forecast gap by construction when b > 0)."""
    y = t.trap()
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = m - np.log(t.vix / 100)
    ok = np.isfinite(y) & np.isfinite(gap)
    if len(np.unique(y[ok])) < 2:
        raise ValueError("trap link needs both outcomes in the window")
    model = LogisticRegression(C=1e6, max_iter=1000).fit(gap[ok, None], y[ok])
    return [float(model.intercept_[0]), float(model.coef_[0, 0])]


def fit_core(t: VolTargets, head_pred: np.ndarray | None = None) -> dict[str, Any]:
    """Every parameter of the core from one window. ``head_pred`` (m per row) replaces the
    HAR head's fitted values when a boosted head is shipped instead."""
    coef = fit_har(t.har_x, t.log_rv5)
    m = t.har_x @ coef if head_pred is None else head_pred
    buckets = np.asarray([dte_bucket(d) if np.isfinite(d) else "" for d in t.days_to_expiry])
    with np.errstate(divide="ignore"):
        log_rv_exp = np.log(np.where(t.rv_expiry > 0, t.rv_expiry, np.nan))
    blend = fit_move_blend(t, m)
    u = scaled_expiry_move(t, m, blend)
    regime_bucket = np.char.add(np.char.add(t.regime.astype(str), "|"), buckets)
    rv_exp = t.rv_expiry[np.isfinite(t.rv_expiry)]
    return {
        "har": {"inputs": list(HAR_INPUTS), "coef": coef.tolist()},
        "quantile_levels": list(QUANTILE_LEVELS),
        "trap_link": fit_trap_link(t, m),
        "move_blend": blend,
        "expiry_residuals": _tables(log_rv_exp - m, [buckets]),
        "stress_terciles_rv": [float(q) for q in np.quantile(rv_exp, [1 / 3, 2 / 3])],
        "move_u": _tables(u, [t.regime, regime_bucket]),
        "move_abs_u": _tables(u, [t.regime, regime_bucket], lambda v: float(np.mean(np.abs(v)))),
        "dte_buckets": [list(b) for b in DTE_BUCKETS],
        "samples": {
            "har": int((np.isfinite(t.har_x).all(1) & np.isfinite(t.log_rv5)).sum()),
            "expiry": int(np.isfinite(u).sum()),
        },
    }
