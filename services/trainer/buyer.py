"""Training the ``buyer`` heads: breakout by day offset, spike direction, move to expiry."""

from __future__ import annotations

import numpy as np

from services.trainer.artifacts import TrainedModel
from services.trainer.data import TrainingData
from services.trainer.profiles import Profile
from services.trainer.seller import EXPIRY_PURGE_SESSIONS
from services.trainer.tabular import Head, holdout_then_refit
from shared.features.daily import FEATURE_NAMES
from shared.models import boosters, labels
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


def train_buyer(data: TrainingData, profile: Profile) -> TrainedModel:
    bx, by, brows = breakout_samples(data)
    breakout, breakout_metrics = holdout_then_refit(
        bx, by, brows, MAX_DAY_OFFSET + 1, Head("binary"), profile
    )

    x = data.features.to_numpy(dtype=np.float32)
    spike, up = labels.next_session_spike(data.frame["close"], data.features["sigma20_daily"])
    on_spike = (spike == 1).to_numpy()
    spike_booster, spike_metrics = holdout_then_refit(
        x[on_spike], up.to_numpy()[on_spike], np.flatnonzero(on_spike), 1, Head("binary"), profile
    )

    mx, my = move_samples(data)
    move, move_metrics = holdout_then_refit(
        mx, my, np.arange(len(mx)), EXPIRY_PURGE_SESSIONS, Head("regression"), profile
    )

    return TrainedModel(
        name="buyer",
        feature_sets=("daily",),
        params={"max_day_offset": MAX_DAY_OFFSET, "spike_sessions": int(on_spike.sum())},
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
