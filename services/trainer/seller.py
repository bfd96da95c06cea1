"""Training the ``seller`` heads: volatility trap, expiry stress, strike breach."""

from __future__ import annotations

import numpy as np

from services.trainer.artifacts import TrainedModel
from services.trainer.data import TrainingData
from services.trainer.profiles import Profile
from services.trainer.tabular import Head, holdout_then_refit
from shared.models import boosters, labels
from shared.models.seller import BREACH_FILE, STRESS_FILE, TRAP_FILE, breach_input

TRAP_SESSIONS = 5
EXPIRY_PURGE_SESSIONS = 7  # a weekly expiry is at most 5 sessions away; margin for holidays
STRIKE_STEPS_PCT = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0)


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
    """One sample per (session, strike on the 0.5%..3% grid, side): inputs, label, session
    row, strike distance in percent."""
    close = data.frame["close"].to_numpy(float)
    pos = labels.expiry_positions(data.frame.index)
    records = data.features.to_dict("records")
    dte = data.features["days_to_expiry"].to_numpy()
    xs, ys, rows, pcts = [], [], [], []
    for t in np.flatnonzero((pos > np.arange(len(pos))) & data.frame["vix"].notna().to_numpy()):
        spot, settle = close[t], close[pos[t]]
        for pct in STRIKE_STEPS_PCT:
            for sign in (1, -1):
                strike = spot * (1 + sign * pct / 100)
                xs.append(breach_input(records[t], spot, strike, int(dte[t])))
                ys.append(float(settle > strike if sign > 0 else settle < strike))
                rows.append(t)
                pcts.append(pct)
    return np.asarray(xs, np.float32), np.asarray(ys), np.asarray(rows), np.asarray(pcts)


def train_seller(data: TrainingData, profile: Profile) -> TrainedModel:
    x = data.features.to_numpy(dtype=np.float32)
    order = np.arange(len(x))
    trap, trap_metrics = holdout_then_refit(
        x, trap_labels(data), order, TRAP_SESSIONS, Head("binary"), profile
    )

    rv_exp = labels.realized_vol_to_expiry(data.frame["close"]).to_numpy()
    terciles = np.nanquantile(rv_exp, [1 / 3, 2 / 3])
    stress, stress_metrics = holdout_then_refit(
        x, stress_classes(rv_exp, terciles), order, EXPIRY_PURGE_SESSIONS, Head("multi", 3), profile
    )

    bx, by, brows, _ = breach_samples(data)
    breach, breach_metrics = holdout_then_refit(
        bx, by, brows, EXPIRY_PURGE_SESSIONS, Head("binary"), profile
    )

    return TrainedModel(
        name="seller",
        feature_sets=("daily",),
        params={"stress_terciles_rv": terciles, "strike_steps_pct": STRIKE_STEPS_PCT},
        metrics={
            "trap": trap_metrics,
            "stress": stress_metrics,
            "breach": breach_metrics,
            "stress_terciles_rv": terciles,
        },
        training_window={"start": data.start, "end": data.end},
        writers={
            TRAP_FILE: lambda p: boosters.save(trap, p),
            STRESS_FILE: lambda p: boosters.save(stress, p),
            BREACH_FILE: lambda p: boosters.save(breach, p),
        },
    )
