"""XGBoost boosters in XGBoost's own format (.ubj), trained deterministically."""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb
from xgboost._data_utils import array_interface
from xgboost.core import _LIB, _check_call, c_bst_ulong, make_jcargs

# One thread: the data is small, and with 2 OpenMP threads on a shared 2-core box a
# training run collapsed from 0.25 s to 32 s (spin-waiting threads, measured). Deterministic.
TRAIN_THREADS = 1
# ``inplace_predict``'s defaults: values (not margins), every tree, NaN is missing.
_DENSE_VALUE_ARGS = make_jcargs(
    type=0,
    training=False,
    iteration_begin=0,
    iteration_end=0,
    missing=float("nan"),
    strict_shape=False,
    cache_id=0,
)


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
    """Predictions for rows of ``x`` (1-D is one row): what ``booster.inplace_predict``
    gives, through the same C call without its per-call Python preparation (about 90 µs of
    the 175 µs a live snapshot's single-row call took, measured on xgboost 3.2)."""
    rows = np.ascontiguousarray(np.atleast_2d(np.asarray(x, dtype=np.float32)))
    preds = ctypes.POINTER(ctypes.c_float)()
    shape = ctypes.POINTER(c_bst_ulong)()
    dims = c_bst_ulong()
    _check_call(
        _LIB.XGBoosterPredictFromDense(
            booster.handle,
            array_interface(rows),
            _DENSE_VALUE_ARGS,
            ctypes.c_void_p(),  # no proxy: no base margin
            ctypes.byref(shape),
            ctypes.byref(dims),
            ctypes.byref(preds),
        )
    )
    out_shape = tuple(int(shape[i]) for i in range(dims.value))
    # the buffer belongs to the booster until its next call: copy it out
    return np.ctypeslib.as_array(preds, shape=out_shape).copy()
