"""Training the ``direction`` ensemble (BiLSTM + XGBoost per horizon): base models fitted on
the training fold, temperature and the weight toward climatology fitted on a calibration
fold, then gated on a later validation fold. A horizon whose shrunk forecast does not beat
climatology there significantly (or is constant, or worse calibrated) gets weight 0: it
publishes climatology and says so.

The published base models are the ones calibrated and gated. They are not refitted on the
whole window: a refit is another model, whose outputs the temperature and weight were
never fitted to and the gate never saw."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xgboost as xgb

from services.trainer.artifacts import TrainedModel
from services.trainer.data import TrainingData
from services.trainer.profiles import Profile
from services.trainer.skill import skill_gate
from services.trainer.splits import purged_folds
from shared.models import boosters, calibration, direction_net, labels
from shared.models.api import HORIZONS
from shared.models.direction import LSTM_FILE, booster_file
from shared.models.inputs import normalise_sequences

HORIZON_KEYS = list(HORIZONS)
MAX_HORIZON = max(HORIZONS.values())
LSTM_WEIGHT = 0.5
N_CLASSES = 3


def targets(data: TrainingData) -> tuple[np.ndarray, np.ndarray]:
    """(class labels, forward log returns), each (rows, horizons), NaN where unknown."""
    close, sigma = data.frame["close"], data.features["sigma20_daily"]
    y = np.stack(
        [labels.direction_labels(close, sigma, n).to_numpy() for n in HORIZONS.values()], 1
    )
    r = np.stack([labels.forward_log_return(close, n).to_numpy() for n in HORIZONS.values()], 1)
    return y, r


def usable_rows(data: TrainingData) -> np.ndarray:
    """Rows with a full 60-session window and a known σ20 (the label's neutral band)."""
    ok = data.features["sigma20_daily"].notna().to_numpy()
    ok[: data.sequences.shape[1] - 1] = False
    return np.flatnonzero(ok)


@dataclass
class BaseModels:
    net: direction_net.DirectionNet
    boosters: list[xgb.Booster]
    seq_mean: np.ndarray
    seq_std: np.ndarray

    def raw(self, data: TrainingData, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        seq = normalise_sequences(data.sequences[rows], self.seq_mean, self.seq_std)
        lstm = direction_net.predict_proba(self.net, seq)
        x = data.features.to_numpy(dtype=np.float32)[rows]
        return lstm, np.stack([boosters.predict(b, x) for b in self.boosters], axis=1)


def fit_base(data: TrainingData, rows: np.ndarray, y: np.ndarray, profile: Profile) -> BaseModels:
    x = data.features.to_numpy(dtype=np.float32)
    fitted = []
    for j in range(len(HORIZON_KEYS)):
        r = rows[~np.isnan(y[rows, j])]
        fitted.append(
            boosters.train(
                x[r],
                y[r, j],
                {**profile.xgb_params, "objective": "multi:softprob", "num_class": N_CLASSES},
                profile.xgb_rounds,
                profile.seed,
            )
        )
    raw_seq = data.sequences[rows]
    mean = np.nanmean(raw_seq, axis=(0, 1)).astype(np.float32)
    std = (np.nanstd(raw_seq, axis=(0, 1)) + 1e-8).astype(np.float32)
    config = direction_net.NetConfig(len(mean), len(HORIZON_KEYS), hidden=profile.lstm_hidden)
    net = direction_net.fit(
        normalise_sequences(raw_seq, mean, std),
        np.nan_to_num(y[rows], nan=-1).astype(int),
        config,
        epochs=profile.lstm_epochs,
        seed=profile.seed,
    )
    return BaseModels(net, fitted, mean, std)


def class_stats(y: np.ndarray, r: np.ndarray, rows: np.ndarray) -> tuple[dict, dict]:
    """Per horizon: class frequencies (climatology) and the mean log return of each class."""
    clim, means = {}, {}
    for j, h in enumerate(HORIZON_KEYS):
        known = rows[~np.isnan(y[rows, j])]
        cls = y[known, j].astype(int)
        clim[h] = [float(np.mean(cls == k)) for k in range(N_CLASSES)]
        means[h] = [
            float(r[known, j][cls == k].mean()) if np.any(cls == k) else 0.0
            for k in range(N_CLASSES)
        ]
    return clim, means


def train_direction(
    data: TrainingData, profile: Profile, progress: Callable[[str], None] = lambda _: None
) -> TrainedModel:
    y, r = targets(data)
    rows = usable_rows(data)
    rows = rows[~np.isnan(y[rows, 0])]
    folds = purged_folds(rows, MAX_HORIZON)
    clim_train, _ = class_stats(y, r, folds.train)
    progress("direction: base models on the training fold")
    held_out = fit_base(data, folds.train, y, profile)

    params: dict = {
        "horizons": HORIZON_KEYS,
        "lstm_weight": LSTM_WEIGHT,
        "temperature": {},
        "shrink_weight": {},
        "beats_climatology": {},
    }
    metrics: dict = {"validation": {}}
    cal_lstm, cal_xgb = held_out.raw(data, folds.calibrate)
    val_lstm, val_xgb = held_out.raw(data, folds.validate)
    for j, h in enumerate(HORIZON_KEYS):
        clim = np.asarray(clim_train[h])
        # calibrate fold: temperature, then the Brier-optimal weight toward climatology
        known_c = ~np.isnan(y[folds.calibrate, j])
        yc = y[folds.calibrate[known_c], j].astype(int)
        raw_c = LSTM_WEIGHT * cal_lstm[known_c, j] + (1 - LSTM_WEIGHT) * cal_xgb[known_c, j]
        temperature = calibration.fit_temperature(raw_c, yc)
        weight = calibration.brier_shrink_weight(
            calibration.apply_temperature(raw_c, temperature), yc, clim
        )
        # validate fold (later, untouched): is the shrunk forecast better than climatology?
        known_v = ~np.isnan(y[folds.validate, j])
        yv = y[folds.validate[known_v], j].astype(int)
        raw_v = LSTM_WEIGHT * val_lstm[known_v, j] + (1 - LSTM_WEIGHT) * val_xgb[known_v, j]
        shrunk_v = calibration.shrink(
            calibration.apply_temperature(raw_v, temperature), clim, weight
        )
        clim_v = np.tile(clim, (len(yv), 1))
        gate = skill_gate(shrunk_v, clim_v, yv, block=HORIZONS[h])
        params["temperature"][h] = temperature
        params["shrink_weight"][h] = weight if gate.live else 0.0  # 0: the horizon is climatology
        params["beats_climatology"][h] = gate.live
        metrics["validation"][h] = {
            "climatology": clim.tolist(),  # the baseline gated against: the training fold's
            "log_loss": calibration.log_loss(shrunk_v, yv),
            "log_loss_climatology": calibration.log_loss(clim_v, yv),
            "accuracy": float(np.mean(shrunk_v.argmax(1) == yv)),
            "accuracy_majority": float(np.mean(yv == int(np.argmax(clim)))),
            "fitted_shrink_weight": weight,
            "gate": gate.to_dict(),
            "window": f"{data.frame.index[folds.validate[0]]:%Y-%m-%d}.."
            f"{data.frame.index[folds.validate[known_v][-1]]:%Y-%m-%d}",
        }

    clim_all, class_means = class_stats(y, r, rows)
    # A live horizon shrinks toward the climatology it was gated with (the training fold's),
    # so its forecast is the gated one exactly; a climatology horizon publishes the whole
    # window's class frequencies.
    shrink_target = {
        h: clim_train[h] if params["beats_climatology"][h] else clim_all[h] for h in HORIZON_KEYS
    }
    params.update(
        {
            "climatology": shrink_target,
            "class_mean_return": class_means,
            "sequence_mean": held_out.seq_mean,
            "sequence_std": held_out.seq_std,
            "net": held_out.net.config.to_dict(),
        }
    )
    metrics.update(
        {
            "beats_climatology": params["beats_climatology"],
            "climatology": clim_all,
            "shrink_weight": params["shrink_weight"],
            "temperature": params["temperature"],
        }
    )
    writers: dict[str, Callable[[Path], None]] = {
        LSTM_FILE: lambda p: direction_net.save(held_out.net, p)
    }
    for h, booster in zip(HORIZON_KEYS, held_out.boosters, strict=True):
        writers[booster_file(h)] = functools.partial(boosters.save, booster)
    return TrainedModel(
        name="direction",
        feature_sets=("daily", "sequence"),
        params=params,
        metrics=metrics,
        training_window={"start": data.start, "end": data.end},
        writers=writers,
    )
