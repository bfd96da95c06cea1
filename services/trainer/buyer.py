"""Training the ``buyer`` heads: breakout by day offset, spike direction, move to expiry."""

from __future__ import annotations

import numpy as np
import xgboost as xgb

from services.trainer.artifacts import TrainedModel
from services.trainer.data import TrainingData
from services.trainer.profiles import Profile
from services.trainer.seller import EXPIRY_PURGE_SESSIONS
from services.trainer.skill import skill_gate
from services.trainer.splits import purged_folds
from services.trainer.tabular import Head, fit, holdout_then_refit
from shared.features.daily import FEATURE_NAMES
from shared.models import boosters, calibration, labels
from shared.models.buyer import BREAKOUT_FILE, MAX_DAY_OFFSET, MOVE_FILE, SPIKE_FILE


def breakout_samples(data: TrainingData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows × day offsets 0..5: inputs (features + day_offset), label, session row."""
    x = data.features.to_numpy(dtype=np.float32)
    atr = data.features["atr_14"]
    xs, ys, rows = [], [], []
    for offset in range(MAX_DAY_OFFSET + 1):
        xs.append(np.column_stack([x, np.full(len(x), offset, np.float32)]))
        ys.append(labels.breakout_labels(data.frame, atr, offset).to_numpy())
        rows.append(np.arange(len(x)))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(rows)


def move_samples(data: TrainingData) -> tuple[np.ndarray, np.ndarray]:
    """Inputs as ``buyer.move_input`` builds them (sessions to expiry unknown) and the
    absolute log move to the next expiry close."""
    x = data.features.to_numpy(dtype=np.float32).copy()
    x[:, FEATURE_NAMES.index("sessions_to_expiry")] = np.nan
    return x, labels.expiry_log_return(data.frame["close"]).abs().to_numpy()


def train_spike(data: TrainingData, profile: Profile) -> tuple[xgb.Booster, dict, dict]:
    """P(up | next session is a spike): a booster on the spike sessions, shrunk toward the
    training base rate by a Brier-optimal weight fitted on a calibration fold and kept only
    if a later validation fold shows significant skill; else the base rate is published.
    The booster published is the one weighted and gated (not a refit on every spike)."""
    x = data.features.to_numpy(dtype=np.float32)
    spike, up = labels.next_session_spike(data.frame["close"], data.features["sigma20_daily"])
    y = up.to_numpy()
    rows = np.flatnonzero((spike == 1).to_numpy() & ~np.isnan(y))
    folds = purged_folds(rows, 1)
    held = fit(x[folds.train], y[folds.train], Head("binary"), profile)
    base = float(np.mean(y[folds.train]))
    clim = np.array([1 - base, base])

    def shrunk(part: np.ndarray, weight: float) -> np.ndarray:
        raw = calibration.binary_to_two_class(boosters.predict(held, x[part]))
        return calibration.shrink(raw, clim, weight)

    weight = calibration.brier_shrink_weight(
        shrunk(folds.calibrate, 1.0), y[folds.calibrate].astype(int), clim
    )
    gate = skill_gate(
        shrunk(folds.validate, weight),
        np.tile(clim, (len(folds.validate), 1)),
        y[folds.validate],
        block=1,
    )
    params = {
        "spike_sessions": len(rows),
        # live: the base rate it was gated with (the training fold's), so the published
        # forecast is the gated one; else the base rate of every spike session
        "spike_base_rate": base if gate.live else float(np.mean(y[rows])),
        "spike_shrink_weight": weight if gate.live else 0.0,  # 0: the base rate is published
    }
    metrics = {"fitted_shrink_weight": weight, "base_rate_train": base, "gate": gate.to_dict()}
    return held, params, metrics


def train_buyer(data: TrainingData, profile: Profile) -> TrainedModel:
    bx, by, brows = breakout_samples(data)
    breakout, breakout_metrics = holdout_then_refit(
        bx, by, brows, MAX_DAY_OFFSET + 1, Head("binary"), profile
    )

    spike_booster, spike_params, spike_metrics = train_spike(data, profile)

    mx, my = move_samples(data)
    move, move_metrics = holdout_then_refit(
        mx, my, np.arange(len(mx)), EXPIRY_PURGE_SESSIONS, Head("regression"), profile
    )

    return TrainedModel(
        name="buyer",
        feature_sets=("daily",),
        params={"max_day_offset": MAX_DAY_OFFSET, **spike_params},
        metrics={
            "breakout": breakout_metrics,
            "spike_direction": spike_metrics,
            "move_to_expiry": move_metrics,
        },
        training_window={"start": data.start, "end": data.end},
        writers={
            BREAKOUT_FILE: lambda p: boosters.save(breakout, p),
            SPIKE_FILE: lambda p: boosters.save(spike_booster, p),
            MOVE_FILE: lambda p: boosters.save(move, p),
        },
    )
