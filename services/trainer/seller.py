"""Training the ``seller`` model: the volatility core, its head chosen out of sample, and the
per-signal choice between the core and each signal's strongest simple baseline.

Validation: the last HOLDOUT_SHARE of the window's sessions. The core is fitted on the
sessions before it (purged so no label reaches into it), each signal is scored against its
baseline there, then everything is refitted on the whole window for publishing.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.stats import norm, spearmanr

from services.trainer.artifacts import TrainedModel
from services.trainer.data import TrainingData
from services.trainer.profiles import Profile
from services.trainer.tabular import HOLDOUT_SHARE
from services.trainer.vol import TRAP_SESSIONS, VolTargets, fit_core
from shared.models import boosters, labels
from shared.models.seller import HEAD_FILE, distance_sigma
from shared.models.volatility import STRESS_CLASSES, VolatilityCore

EXPIRY_PURGE_SESSIONS = 7  # a weekly expiry is at most 5 sessions away; margin for holidays
STRIKE_STEPS_PCT = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0)
SAFE_RANGE_TOLERANCE = 0.03  # validation coverage this close to target for the model to ship
BASELINES = {
    "trap": "climatology (training base rate of RV5 > VIX)",
    "stress": "VIX level (regime climatology of the RV-to-expiry terciles)",
    "move": "VIX-implied move S*VIX/100*sqrt(T/365)*sqrt(2/pi)",
    "expiry_range": "VIX lognormal (breach curve) with the stats model's calibrated VIX band",
}


def trap_labels(data: TrainingData) -> np.ndarray:
    rv = labels.forward_realized_vol(data.frame["close"], TRAP_SESSIONS)
    y = (rv > data.frame["vix"] / 100).astype(float).to_numpy()
    y[(rv.isna() | data.frame["vix"].isna()).to_numpy()] = np.nan
    return y


def stress_classes(rv_to_expiry: np.ndarray, terciles: np.ndarray) -> np.ndarray:
    out = np.digitize(rv_to_expiry, terciles).astype(float)
    out[np.isnan(rv_to_expiry)] = np.nan
    return out


def breach_samples(
    data: TrainingData,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One sample per (session, strike on the 0.5%..3% grid, side): (distance in implied
    sigmas, strike above spot), label, session row, strike distance in percent."""
    close = data.frame["close"].to_numpy(float)
    vix = data.frame["vix"].to_numpy(float)
    pos = labels.expiry_positions(data.frame.index)
    dte = data.features["days_to_expiry"].to_numpy()
    xs, ys, rows, pcts = [], [], [], []
    for t in np.flatnonzero((pos > np.arange(len(pos))) & np.isfinite(vix)):
        spot, settle = close[t], close[pos[t]]
        for pct in STRIKE_STEPS_PCT:
            for sign in (1, -1):
                strike = spot * (1 + sign * pct / 100)
                xs.append((distance_sigma(spot, strike, vix[t], dte[t]), float(sign > 0)))
                ys.append(float(settle > strike if sign > 0 else settle < strike))
                rows.append(t)
                pcts.append(pct)
    return np.asarray(xs, np.float32), np.asarray(ys), np.asarray(rows), np.asarray(pcts)


def _choice(
    metric: str, model: float, baseline: float, lower_is_better: bool, samples: int, name: str
) -> dict[str, Any]:
    wins = model < baseline if lower_is_better else model > baseline
    if lower_is_better:
        skill = 1 - model / baseline if baseline else math.nan
    else:
        skill = model - baseline
    return {
        "live": "model" if wins and math.isfinite(model) else "baseline",
        "baseline": BASELINES[name],
        "metric": metric,
        "model_score": model,
        "baseline_score": baseline,
        "skill": skill,
        "samples": samples,
    }


def validate(
    params: dict[str, Any],
    booster: Any | None,
    t: VolTargets,
    train_rows: np.ndarray,
    test_rows: np.ndarray,
    coverage: float,
) -> dict[str, dict[str, Any]]:
    """Each signal from the core ``params`` (+ ``booster`` head), fitted before
    ``test_rows``, against its baseline on ``test_rows``: which one would be live, and by
    how much it won. The head is evaluated once per row, in a batch."""
    x = t.har_x[test_rows]
    if booster is None:
        m = x @ np.asarray(params["har"]["coef"])
    else:
        m = boosters.predict(booster, x[:, 1:].astype(np.float32))
    m = np.where(np.isfinite(x).all(axis=1), m, np.nan)
    core = VolatilityCore(params, lambda daily: daily["log_vol"])
    inputs = [{**d, "log_vol": mi} for d, mi in zip(t.inputs(test_rows), m, strict=True)]
    test = t.subset(test_rows)
    ok = np.isfinite(m) & (test.vix > 0)
    out: dict[str, dict[str, Any]] = {}

    # trap: Brier against the training base rate
    y = test.trap()
    sel = ok & np.isfinite(y)
    base = float(np.nanmean(t.subset(train_rows).trap()))
    p = np.asarray([core.trap_probability(d) for d, s in zip(inputs, sel, strict=True) if s])
    out["trap"] = _choice(
        "brier",
        float(np.mean((p - y[sel]) ** 2)),
        float(np.mean((base - y[sel]) ** 2)),
        True,
        int(sel.sum()),
        "trap",
    )

    # stress: rank correlation with the next 5 sessions' realised vol, against VIX's own
    rows = [d for d, s in zip(inputs, sel, strict=True) if s]
    dte = test.days_to_expiry[sel]
    score = [
        0.5 * pr["medium"] + pr["high"]
        for pr in (core.stress_probabilities(d, x) for d, x in zip(rows, dte, strict=True))
    ]
    out["stress"] = _choice(
        "spearman_rv5",
        float(spearmanr(score, test.log_rv5[sel])[0]),
        float(spearmanr(test.vix[sel], test.log_rv5[sel])[0]),
        False,
        int(sel.sum()),
        "stress",
    )

    # move to expiry and the expiry distribution: sessions with an expiry ahead
    ex = ok & (test.sessions_to_expiry >= 1) & np.isfinite(test.expiry_return)
    rows = [d for d, s in zip(inputs, ex, strict=True) if s]
    n, days, r = test.sessions_to_expiry[ex], test.days_to_expiry[ex], test.expiry_return[ex]
    implied = test.vix[ex] / 100 * np.sqrt(np.maximum(days, 1) / 365)
    move = np.asarray(
        [core.expected_abs_move(d, a, b) for d, a, b in zip(rows, n, days, strict=True)]
    )
    out["move"] = _choice(
        "mae",
        float(np.mean(np.abs(move - np.abs(r)))),
        float(np.mean(np.abs(implied * math.sqrt(2 / math.pi) - np.abs(r)))),
        True,
        int(ex.sum()),
        "move",
    )
    b_model, b_base = [], []
    for d, a, b, sc, ret in zip(rows, n, days, implied, r, strict=True):
        for pct in STRIKE_STEPS_PCT:
            for sign in (1, -1):
                k = math.log(1 + sign * pct / 100)
                hit = float(ret > k if sign > 0 else ret < k)
                p_model = core.breach_probability(d, 1.0, math.exp(k), a, b)
                b_model.append((p_model - hit) ** 2)
                b_base.append((float(norm.sf(abs(k) / sc)) - hit) ** 2)
    bounds = [
        core.range_bounds(d, 1.0, a, b, coverage) for d, a, b in zip(rows, n, days, strict=True)
    ]
    inside = np.mean([lo <= math.exp(x) <= hi for (lo, hi), x in zip(bounds, r, strict=True)])
    choice = _choice(
        "breach_brier",
        float(np.mean(b_model)),
        float(np.mean(b_base)),
        True,
        int(ex.sum()),
        "expiry_range",
    )
    choice["range_coverage"] = float(inside)
    if abs(inside - coverage) > SAFE_RANGE_TOLERANCE:
        choice["live"] = "baseline"
    out["expiry_range"] = choice
    return out


def build_core(t: VolTargets, head: str, profile: Profile) -> tuple[dict[str, Any], Any | None]:
    """(core parameters, booster or None) fitted on all of ``t`` with the chosen head; a
    boosted head's residuals are measured on its cross-fitted (out-of-fold) forecasts."""
    if head == "har":
        params, booster = fit_core(t), None
    else:
        booster = fit_head(t, np.arange(len(t)), profile)
        params = fit_core(t, cross_fitted_head(t, profile))
    params["head"] = head
    return params, booster


def fit_head(t: VolTargets, train_rows: np.ndarray, profile: Profile) -> Any:
    """The boosted alternative to the HAR head: XGBoost on the same LHAR inputs."""
    x = t.har_x[train_rows, 1:].astype(np.float32)
    y = t.log_rv5[train_rows]
    ok = np.isfinite(y)
    params = {**profile.xgb_params, "objective": "reg:squarederror"}
    return boosters.train(x[ok], y[ok], params, profile.xgb_rounds, profile.seed)


def cross_fitted_head(t: VolTargets, profile: Profile, folds: int = 5) -> np.ndarray:
    """Out-of-fold boosted forecasts (contiguous blocks), so the residual quantiles the core
    measures around a boosted head are out of sample, not its in-sample fit."""
    out = np.full(len(t), np.nan)
    rows = np.arange(len(t))
    for block in np.array_split(rows, folds):
        lo, hi = block[0] - EXPIRY_PURGE_SESSIONS, block[-1] + EXPIRY_PURGE_SESSIONS
        booster = fit_head(t, rows[(rows < lo) | (rows > hi)], profile)
        out[block] = boosters.predict(booster, t.har_x[block, 1:].astype(np.float32))
    return out


def compare_heads(
    t: VolTargets, train_rows: np.ndarray, test_rows: np.ndarray, profile: Profile
) -> dict[str, Any]:
    """Validation MSE of ln RV5: HAR (least squares) against the boosted head."""
    fitted = fit_core(t.subset(train_rows))
    coef = np.asarray(fitted["har"]["coef"])
    booster = fit_head(t, train_rows, profile)
    y = t.log_rv5[test_rows]
    har = t.har_x[test_rows] @ coef
    xgb = boosters.predict(booster, t.har_x[test_rows, 1:].astype(np.float32))
    ok = np.isfinite(y) & np.isfinite(har)
    mse_har = float(np.mean((har[ok] - y[ok]) ** 2))
    mse_xgb = float(np.mean((xgb[ok] - y[ok]) ** 2))
    return {
        "live": "xgb" if mse_xgb < mse_har else "har",
        "mse_har": mse_har,
        "mse_xgb": mse_xgb,
        "samples": int(ok.sum()),
    }


def stress_climatology(t: VolTargets, terciles: list[float]) -> dict[str, dict[str, float]]:
    classes = stress_classes(t.rv_expiry, np.asarray(terciles))
    out = {}
    for key in ("ALL", *np.unique(t.regime)):
        sel = np.isfinite(classes) & ((t.regime == key) | (key == "ALL"))
        if sel.sum():
            out[str(key)] = {
                c: float(np.mean(classes[sel] == k)) for k, c in enumerate(STRESS_CLASSES)
            }
    return out


def train_seller(data: TrainingData, profile: Profile, coverage: float = 0.9) -> TrainedModel:
    t = VolTargets.of(data)
    sessions = len(t)
    boundary = int(sessions * (1 - HOLDOUT_SHARE))
    inner = np.arange(max(0, boundary - EXPIRY_PURGE_SESSIONS))
    test = np.arange(boundary, sessions)
    heads = compare_heads(t, inner, test, profile)
    selection = validate(
        *build_core(t.subset(inner), heads["live"], profile), t, inner, test, coverage
    )
    window = f"{data.frame.index[boundary]:%Y-%m-%d}..{data.end}"
    for row in (heads, *selection.values()):
        row["window"] = window

    core, booster = build_core(t, heads["live"], profile)
    writers = {}
    if booster is not None:
        writers[HEAD_FILE] = lambda p: boosters.save(booster, p)
    return TrainedModel(
        name="seller",
        feature_sets=("daily",),
        params={
            "core": core,
            "selection": selection,
            "head_selection": heads,
            "stress_terciles_rv": core["stress_terciles_rv"],
            "stress_climatology": stress_climatology(t, core["stress_terciles_rv"]),
            "trap_base_rate": float(np.nanmean(t.trap())),
            "strike_steps_pct": STRIKE_STEPS_PCT,
            "coverage_target": coverage,
        },
        metrics={"selection": selection, "head_selection": heads, "samples": core["samples"]},
        training_window={"start": data.start, "end": data.end},
        writers=writers,
    )
