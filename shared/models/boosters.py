"""XGBoost boosters in XGBoost's own format (.ubj), trained deterministically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

# One thread: the data is small, and with 2 OpenMP threads on a shared 2-core box a
# training run collapsed from 0.25 s to 32 s (spin-waiting threads, measured). Deterministic.
TRAIN_THREADS = 1


def train(
    x: np.ndarray,
    y: np.ndarray,
    params: dict[str, Any],
    rounds: int,
    seed: int,
    feature_names: list[str] | None = None,
) -> xgb.Booster:
    dtrain = xgb.DMatrix(x, label=y, feature_names=feature_names, nthread=TRAIN_THREADS)
    full = {"tree_method": "hist", "nthread": TRAIN_THREADS, "seed": seed, "verbosity": 0, **params}
    return xgb.train(full, dtrain, num_boost_round=rounds)


def save(booster: xgb.Booster, path: Path) -> None:
    booster.save_model(str(path))


def load(path: Path) -> xgb.Booster:
    booster = xgb.Booster()
    booster.load_model(str(path))
    booster.set_param({"nthread": 1})  # one snapshot at a time: threads only add latency
    return booster


def predict(booster: xgb.Booster, x: np.ndarray) -> np.ndarray:
    """Predictions for rows of ``x`` (1-D is one row)."""
    rows = np.atleast_2d(np.asarray(x, dtype=np.float32))
    return np.asarray(booster.inplace_predict(rows, validate_features=False))
