"""Walk-forward evaluation: expanding window, retrain every N sessions, predict the next
block out of sample through the real registry and loader, score against baselines.

Training data for a block ends the session before the block starts, and every training
label is computed from that cut data, so no training label reaches into the block (purge).
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from services.trainer import engine_strikes
from services.trainer import metrics as m
from services.trainer.buyer import breakout_samples, move_samples, train_buyer
from services.trainer.data import MINUTE_FILE, TrainingData, load_minutes, load_training_data
from services.trainer.direction import targets, train_direction
from services.trainer.pipeline import publish_models
from services.trainer.profiles import FAST, FULL
from services.trainer.seller import (
    STRIKE_STEPS_PCT,
    breach_samples,
    stress_classes,
    train_seller,
    trap_labels,
)
from services.trainer.stats import train_stats
from services.trainer.vol import TRAP_SESSIONS
from services.trainer.vol_evaluation import minute_rv5, minute_target
from shared.config import Settings
from shared.logs import get_logger
from shared.market import calendar
from shared.models import labels
from shared.models.api import DIRECTION_CLASSES, HORIZONS, vix_regime
from shared.models.buyer import MAX_DAY_OFFSET
from shared.models.loading import load_model
from shared.models.seller import SIGNALS as SELLER_SIGNALS
from shared.models.seller import STRESS_CLASSES, distance_sigma
from shared.signals import labels as signal_labels
from shared.signals.breach import lognormal_breach_probability
from shared.signals.safe_range import implied_move_points

log = get_logger("evaluation")


def _fold_models(
    train: TrainingData,
    fast: bool,
    coverage: float,
    model_dir: Path,
    valid_for: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The fold's models, published into ``model_dir`` (with ``valid_for``: the sessions
    they serve) and loaded back through the registry and loader, as engines load them."""
    profile = FAST if fast else FULL
    trained = [
        train_direction(train, profile),
        train_seller(train, profile, coverage),
        train_buyer(train, profile),
        train_stats(train, coverage),
    ]
    results = publish_models(trained, train, profile, model_dir, bus=None, valid_for=valid_for)
    return {r.name: load_model(model_dir, r.name, r.version) for r in results}


def _base_rates(train: TrainingData) -> dict[str, Any]:
    """Training-period frequencies: the baselines each forecast must beat."""
    bx, by, _, pcts = breach_samples(train)
    breach = {
        (side, pct): float(np.mean(by[(bx[:, 1] == side) & (pcts == pct)]))
        for side in (0.0, 1.0)
        for pct in STRIKE_STEPS_PCT
    }
    ox, oy, _ = breakout_samples(train)
    spike, up = labels.next_session_spike(train.frame["close"], train.features["sigma20_daily"])
    _, move = move_samples(train)
    return {
        "trap": float(np.nanmean(trap_labels(train))),
        "breach": breach,
        "breakout": {k: float(np.nanmean(oy[ox[:, -1] == k])) for k in range(MAX_DAY_OFFSET + 1)},
        "spike_up": float(up[spike == 1].mean()),
        "move": float(np.nanmean(move)),
    }


def run_evaluation(
    nifty_csvs: Sequence[Path],
    vix_csvs: Sequence[Path],
    start: str,
    out_dir: Path,
    retrain_every: int = 126,
    fast: bool = False,
    end: str | None = None,
    settings: Settings | None = None,
    registry_dir: Path | None = None,
) -> dict[str, Any]:
    """Score every fold's block out of sample; with ``registry_dir``, keep each fold's models
    there as versions valid for the sessions after its training end through the next fold's
    (the last fold's: through ``end``), so engines can replay the same forecasts
    (``AEGIS_WALK_FORWARD_MODEL_DIR``)."""
    coverage = (settings or Settings()).coverage_target
    full = load_training_data(nifty_csvs, vix_csvs, None, end)
    frame, feats = full.frame, full.features
    x_daily = feats.to_numpy(dtype=np.float32)
    records = feats.to_dict("records")
    y_dir, r_dir = targets(full)
    trap_y = trap_labels(full)
    rv5_y = labels.forward_realized_vol(frame["close"], TRAP_SESSIONS).to_numpy()
    rv_exp = labels.realized_vol_to_expiry(frame["close"]).to_numpy()
    exp_pos = labels.expiry_positions(frame.index)
    close = frame["close"].to_numpy(float)
    breakout_y = np.stack(
        [
            labels.breakout_labels(frame, feats["atr_14"], k).to_numpy()
            for k in range(MAX_DAY_OFFSET + 1)
        ],
        1,
    )
    spike, up = labels.next_session_spike(frame["close"], feats["sigma20_daily"])
    first = int(np.searchsorted(frame.index, pd.Timestamp(start)))
    starts = list(range(first, len(frame), retrain_every))
    direction_rows, seller_rows, breach_rows, buyer_rows = [], [], [], []
    breach_engine: list[dict[str, Any]] = []  # at the engine's strikes (engine_strikes.py)
    for b in tqdm(starts, desc="walk-forward folds", unit="fold"):
        block = np.arange(b, min(b + retrain_every, len(frame)))
        train = TrainingData(frame.iloc[:b])
        if registry_dir is None:
            with tempfile.TemporaryDirectory() as tmp:
                models = _fold_models(train, fast, coverage, Path(tmp))
        else:
            valid_for = {"after": train.end, "through": f"{frame.index[block[-1]]:%Y-%m-%d}"}
            models = _fold_models(train, fast, coverage, registry_dir, valid_for)
        base = _base_rates(train)
        fold = f"{train.end}"
        d = models["direction"]
        probs = d.predict_batch(x_daily[block], full.sequences[block])
        for j, h in enumerate(HORIZONS):
            clim = d.climatology(h)
            for i, t in enumerate(block):
                direction_rows.append(
                    {
                        "date": frame.index[t],
                        "horizon": h,
                        **{f"p_{c}": probs[i, j, k] for k, c in enumerate(DIRECTION_CLASSES)},
                        "fold_train_end": fold,
                        **{f"clim_{c}": clim[c] for c in DIRECTION_CLASSES},
                        "predicted": DIRECTION_CLASSES[int(probs[i, j].argmax())],
                        "actual": (
                            None if np.isnan(y_dir[t, j]) else DIRECTION_CLASSES[int(y_dir[t, j])]
                        ),
                        "forward_log_return": r_dir[t, j],
                        "beats_climatology_validation": d.beats_climatology(h),
                        "source": d.source(h),
                    }
                )
        s, bu, st = models["seller"], models["buyer"], models["stats"]
        terciles = np.asarray(s.params["stress_terciles_rv"])
        stress_y = stress_classes(rv_exp, terciles)
        live = {k: s.selection(k)["live"] for k in SELLER_SIGNALS}
        for t in block:
            daily = records[t]
            vix = daily["vix"]
            regime = vix_regime(vix if vix == vix else None)
            dte = int(daily["days_to_expiry"])
            z_lo, z_hi, target = st.safe_range_z(regime)
            sigma_t = vix / 100 * math.sqrt(max(dte, 1) / 365) if vix == vix else math.nan
            settled = exp_pos[t] > t
            sessions = float(exp_pos[t] - t) if settled else float(daily["sessions_to_expiry"])
            expiry_close = close[exp_pos[t]] if settled else math.nan
            vix_lower = close[t] * math.exp(-z_lo * sigma_t)
            vix_upper = close[t] * math.exp(z_hi * sigma_t)
            lower, upper = s.range_bounds(daily, close[t], target, dte, max(sessions, 1.0))
            stress = s.stress_probabilities(daily)
            stress_base = s.stress_climatology(regime)
            expiry = calendar.expiry_after_close(frame.index[t].date())
            seller_rows.append(
                {
                    "date": frame.index[t],
                    "expiry": expiry,
                    "spot": close[t],
                    "safe_lower": lower,
                    "safe_upper": upper,
                    "coverage_target": target,
                    "trap_probability": s.trap_probability(daily),
                    "stress_score": signal_labels.stress_score(stress),
                    "fold_train_end": fold,
                    "vix": vix,
                    "regime": regime,
                    "days_to_expiry": dte,
                    "trap_actual": trap_y[t],
                    "trap_base_rate": base["trap"],
                    **{f"stress_{c}": stress[c] for c in STRESS_CLASSES},
                    "stress_actual": stress_y[t],
                    "z_lower": z_lo,
                    "z_upper": z_hi,
                    "expiry_close": expiry_close,
                    "inside": float(lower <= expiry_close <= upper) if settled else math.nan,
                    "vix_lower": vix_lower,
                    "vix_upper": vix_upper,
                    "inside_vix_band": (
                        float(vix_lower <= expiry_close <= vix_upper) if settled else math.nan
                    ),
                    "stress_score_baseline": signal_labels.stress_score(stress_base),
                    "rv_next5": rv5_y[t],
                    "vol_forecast": math.exp(s.core.log_vol(daily)),
                    "sigma20": daily["sigma20_daily"],
                    **{f"live_{k}": live[k] for k in SELLER_SIGNALS},
                    "rv_to_expiry": rv_exp[t],
                }
            )
            if vix == vix:
                breach_engine += [
                    {"date": frame.index[t], "expiry": expiry, "fold_train_end": fold, **row}
                    for row in engine_strikes.breach_rows(
                        s,
                        live["expiry_range"] == "model",
                        daily,
                        close[t],
                        max(dte, 1),
                        max(sessions, 1.0),
                        expiry_close,
                    )
                ]
            for pct in STRIKE_STEPS_PCT:
                for sign in (1, -1):
                    strike = close[t] * (1 + sign * pct / 100)
                    breach_rows.append(
                        {
                            "date": frame.index[t],
                            "expiry": expiry,
                            "strike": strike,
                            "side": "above" if sign > 0 else "below",
                            "probability": s.breach_probability(
                                daily, close[t], strike, dte, max(sessions, 1.0)
                            ),
                            "fold_train_end": fold,
                            "strike_pct": pct,
                            "days_to_expiry": dte,
                            "distance_sigma": distance_sigma(close[t], strike, vix, dte),
                            "base_rate": base["breach"][(float(sign > 0), pct)],
                            "breached": (
                                float(expiry_close > strike if sign > 0 else expiry_close < strike)
                                if settled and dte > 0
                                else math.nan
                            ),
                            "probability_lognormal": (
                                lognormal_breach_probability(close[t], strike, vix, max(dte, 1))
                                if vix == vix
                                else math.nan
                            ),
                            "regime": regime,
                        }
                    )
            implied = sigma_t
            predicted_move = s.expected_abs_move(daily, dte, max(sessions, 1.0))
            breakout = [bu.breakout_probability(daily, k) for k in range(MAX_DAY_OFFSET + 1)]
            spike_up = bu.spike_up_probability(daily)
            theta_edge = (
                signal_labels.theta_edge(
                    close[t] * (math.exp(predicted_move) - 1),
                    implied_move_points(close[t], vix, max(dte, 1)),
                )[0]
                if vix == vix
                else math.nan
            )
            buyer_rows.append(
                {
                    "date": frame.index[t],
                    "breakout_probability": breakout[0],
                    "spike_up_probability": spike_up,
                    "theta_edge_score": theta_edge,
                    "fold_train_end": fold,
                    **{f"breakout_p{k}": p for k, p in enumerate(breakout)},
                    **{f"breakout_y{k}": breakout_y[t, k] for k in range(6)},
                    **{f"breakout_base{k}": base["breakout"][k] for k in range(6)},
                    "spike_base": base["spike_up"],
                    "spike_source": bu.spike_source(),
                    "next_is_spike": spike.iloc[t],
                    "next_up": up.iloc[t],
                    "predicted_move": predicted_move,
                    "implied_move": implied,
                    "move_base": base["move"],
                    "regime": regime,
                    "days_to_expiry": dte,
                    "predicted_move_buyer_model": bu.predicted_move_to_expiry(daily, dte),
                    "actual_move": abs(math.log(expiry_close / close[t]))
                    if settled and dte > 0
                    else math.nan,
                }
            )
        log.info("fold_done", train_end=fold, block=f"{frame.index[block[0]]:%Y-%m-%d}")
    tables = {
        "direction": pd.DataFrame(direction_rows),
        "seller": pd.DataFrame(seller_rows),
        "breach": pd.DataFrame(breach_rows),
        "buyer": pd.DataFrame(buyer_rows),
        "breach_engine_strikes": pd.DataFrame(breach_engine),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        table.to_csv(
            out_dir / f"{name}.csv", index=False, float_format="%.6g", date_format="%Y-%m-%d"
        )
    summary = summarise(tables, start=start, retrain_every=retrain_every, fast=fast)
    minute_csv = Path(nifty_csvs[0]).parent / MINUTE_FILE
    if minute_csv.exists():  # the 5-session forecast against 1-minute realised vol
        rv_minute = minute_rv5(load_minutes(minute_csv), frame)
        summary["volatility"]["minute_rv_target"] = minute_target(tables["seller"], rv_minute)
    (out_dir / "metrics.json").write_text(json.dumps(summary, indent=1, default=str))
    from services.trainer.report import write_report

    write_report(tables, summary, out_dir / "report.html")
    return summary


def direction_honesty(
    g: pd.DataFrame, probs: np.ndarray, clim: np.ndarray, y: np.ndarray
) -> dict[str, Any]:
    """One horizon's honesty checks: how often the model (not climatology) was live, folds
    where a forecast labelled "model" was constant, and climatology's own top-label ECE."""
    is_model = (g["source"] == "model").to_numpy()
    constant_model_folds = [
        str(fold)
        for fold, rows in g[is_model].groupby("fold_train_end")
        if np.ptp(rows[[f"p_{c}" for c in DIRECTION_CLASSES]].to_numpy(), axis=0).max() < 1e-9
    ]
    top = clim.argmax(1)
    return {
        "model_share": float(is_model.mean()),
        "constant_model_folds": constant_model_folds,
        "ece_climatology": m.ece(clim.max(1), (top == y).astype(float)),
        "argmax_up_share": float(np.mean(probs.argmax(1) == DIRECTION_CLASSES.index("up"))),
    }


def summarise(tables: dict[str, pd.DataFrame], **run: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"run": run, "direction": {}}
    d = tables["direction"].dropna(subset=["actual"])
    dates = tables["seller"]["date"]
    out["window"] = f"{dates.min():%Y-%m-%d}..{dates.max():%Y-%m-%d}"
    for h, g in d.groupby("horizon", sort=False):
        probs = g[[f"p_{c}" for c in DIRECTION_CLASSES]].to_numpy()
        clim = g[[f"clim_{c}" for c in DIRECTION_CLASSES]].to_numpy()
        y = g["actual"].map({c: i for i, c in enumerate(DIRECTION_CLASSES)}).to_numpy()
        out["direction"][h] = {
            **m.multiclass_report(probs, y, clim),
            **direction_honesty(g, probs, clim, y),
        }
    s = tables["seller"]
    trap = s.dropna(subset=["trap_actual"])
    out["trap"] = m.binary_report(
        trap["trap_probability"].to_numpy(),
        trap["trap_actual"].to_numpy(),
        trap["trap_base_rate"].to_numpy(),
    )
    st = s.dropna(subset=["stress_actual"])
    stress_p = st[[f"stress_{c}" for c in STRESS_CLASSES]].to_numpy()
    out["stress"] = m.multiclass_report(
        stress_p, st["stress_actual"].to_numpy().astype(int), np.full_like(stress_p, 1 / 3)
    )
    cov = s.dropna(subset=["inside"])
    out["safe_range"] = {
        "target": float(cov["coverage_target"].iloc[0]),
        "coverage": float(cov["inside"].mean()),
        "samples": len(cov),
        "below": float((cov["expiry_close"] < cov["safe_lower"]).mean()),
        "above": float((cov["expiry_close"] > cov["safe_upper"]).mean()),
        "by_regime": {
            r: {"coverage": float(g["inside"].mean()), "samples": len(g)}
            for r, g in cov.groupby("regime")
        },
    }
    br = tables["breach"].dropna(subset=["breached", "probability"])
    out["breach"] = m.binary_report(
        br["probability"].to_numpy(), br["breached"].to_numpy(), br["base_rate"].to_numpy()
    )
    out["breach"]["reliability"] = m.reliability(
        br["probability"].to_numpy(), br["breached"].to_numpy()
    )
    bu = tables["buyer"]
    out["breakout"] = {}
    for k in range(6):
        g = bu.dropna(subset=[f"breakout_y{k}"])
        out["breakout"][f"day_offset_{k}"] = m.binary_report(
            g[f"breakout_p{k}"].to_numpy(),
            g[f"breakout_y{k}"].to_numpy(),
            g[f"breakout_base{k}"].to_numpy(),
        )
    sp = bu[bu["next_is_spike"] == 1].dropna(subset=["next_up"])
    out["spike_direction"] = m.binary_report(
        sp["spike_up_probability"].to_numpy(), sp["next_up"].to_numpy(), sp["spike_base"].to_numpy()
    )
    from services.trainer.vol_evaluation import summarise_volatility

    out["volatility"] = summarise_volatility(tables)
    mv = bu.dropna(subset=["actual_move", "implied_move"])
    out["move_to_expiry"] = {
        "samples": len(mv),
        "mae_model": float((mv["predicted_move"] - mv["actual_move"]).abs().mean()),
        # E|N(0, s^2)| = s*sqrt(2/pi): the implied move as an expected absolute move
        "mae_implied": float(
            (mv["implied_move"] * math.sqrt(2 / math.pi) - mv["actual_move"]).abs().mean()
        ),
        "mae_training_mean": float((mv["move_base"] - mv["actual_move"]).abs().mean()),
    }
    return out
