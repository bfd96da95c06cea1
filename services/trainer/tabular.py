"""XGBoost heads with an honest number attached: fit on the earlier part, score the purged
later part against its baseline, then refit on everything for publishing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import xgboost as xgb

from services.trainer.profiles import Profile
from shared.models import boosters, calibration

HOLDOUT_SHARE = 0.15


@dataclass(frozen=True)
class Head:
    objective: str  # binary | multi | regression
    num_class: int = 2

    def xgb_params(self) -> dict[str, Any]:
        if self.objective == "binary":
            return {"objective": "binary:logistic"}
        if self.objective == "multi":
            return {"objective": "multi:softprob", "num_class": self.num_class}
        return {"objective": "reg:squarederror"}


def fit(x: np.ndarray, y: np.ndarray, head: Head, profile: Profile) -> xgb.Booster:
    return boosters.train(
        x, y, {**profile.xgb_params, **head.xgb_params()}, profile.xgb_rounds, profile.seed
    )


def score(pred: np.ndarray, y: np.ndarray, base: np.ndarray, head: Head) -> dict[str, float]:
    """Held-out metrics of ``pred`` next to the baseline ``base`` (training base rates)."""
    if head.objective == "regression":
        return {
            "mae": float(np.mean(np.abs(pred - y))),
            "mae_baseline": float(np.mean(np.abs(base - y))),
        }
    probs = calibration.binary_to_two_class(pred) if head.objective == "binary" else pred
    bases = calibration.binary_to_two_class(base) if head.objective == "binary" else base
    onehot = np.eye(probs.shape[1])[y.astype(int)]
    brier = float(np.mean(np.sum((probs - onehot) ** 2, axis=1)))
    brier_base = float(np.mean(np.sum((bases - onehot) ** 2, axis=1)))
    return {
        "log_loss": calibration.log_loss(probs, y.astype(int)),
        "log_loss_baseline": calibration.log_loss(bases, y.astype(int)),
        "brier": brier,
        "brier_baseline": brier_base,
        "brier_skill": 1 - brier / brier_base if brier_base > 0 else float("nan"),
        "accuracy": float(np.mean(probs.argmax(1) == y)),
    }


def base_rate(y: np.ndarray, head: Head) -> np.ndarray:
    if head.objective == "binary":
        return np.asarray(np.mean(y))
    if head.objective == "multi":
        return np.asarray([np.mean(y == k) for k in range(head.num_class)])
    return np.asarray(np.mean(y))


def holdout_then_refit(
    x: np.ndarray,
    y: np.ndarray,
    order: np.ndarray,
    purge_sessions: int,
    head: Head,
    profile: Profile,
) -> tuple[xgb.Booster, dict[str, Any]]:
    """``order`` is each sample's session row (ascending); the holdout is the last share of
    sessions, and training samples whose label reaches into it are purged."""
    ok = ~np.isnan(y)
    x, y, order = x[ok], y[ok], order[ok]
    boundary = np.unique(order)[int(len(np.unique(order)) * (1 - HOLDOUT_SHARE))]
    train = order + purge_sessions < boundary
    test = order >= boundary
    booster = fit(x[train], y[train], head, profile)
    base = base_rate(y[train], head)
    base_pred = np.broadcast_to(base, (int(test.sum()), *base.shape))
    metrics = score(boosters.predict(booster, x[test]), y[test], base_pred, head)
    metrics.update(samples=int(test.sum()), training_samples=int(train.sum()))
    return fit(x, y, head, profile), metrics
