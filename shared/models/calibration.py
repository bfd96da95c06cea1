"""Probability calibration: temperature scaling, then shrinking toward climatology."""

from __future__ import annotations

import numpy as np

EPS = 1e-6
_TEMPERATURES = np.exp(np.linspace(np.log(0.25), np.log(8.0), 121))
_WEIGHTS = np.linspace(0.0, 1.0, 101)


def log_loss(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log likelihood of integer ``labels`` under rows of ``probs``."""
    picked = probs[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.clip(picked, EPS, 1.0))))


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    logits = np.log(np.clip(probs, EPS, 1.0)) / temperature
    logits -= logits.max(axis=-1, keepdims=True)
    out = np.exp(logits)
    return out / out.sum(axis=-1, keepdims=True)


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising log loss on a held-out fold (grid search, deterministic)."""
    losses = [log_loss(apply_temperature(probs, t), labels) for t in _TEMPERATURES]
    return float(_TEMPERATURES[int(np.argmin(losses))])


def shrink(probs: np.ndarray, climatology: np.ndarray, weight: float) -> np.ndarray:
    return weight * probs + (1.0 - weight) * climatology


def fit_shrink_weight(probs: np.ndarray, labels: np.ndarray, climatology: np.ndarray) -> float:
    """Weight on the model (vs climatology) minimising log loss on the validation fold.
    A model no better than climatology gets a weight near 0."""
    losses = [log_loss(shrink(probs, climatology, w), labels) for w in _WEIGHTS]
    return float(_WEIGHTS[int(np.argmin(losses))])


def binary_to_two_class(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    return np.stack([1 - p, p], axis=-1)


def brier_rows(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-row multi-class Brier score: sum over classes of (p - onehot)^2."""
    onehot = np.eye(probs.shape[1])[labels]
    return np.sum((probs - onehot) ** 2, axis=1)


def brier_shrink_weight(probs: np.ndarray, labels: np.ndarray, climatology: np.ndarray) -> float:
    """Weight on the model (vs climatology) minimising the Brier score of the mixture, in
    closed form: sum((p - c)·(y - c)) / sum(|p - c|^2), clipped to [0, 1]; 0 for a model
    whose forecasts equal climatology."""
    diff = probs - climatology
    denom = float(np.sum(diff**2))
    if denom <= 0:
        return 0.0
    onehot = np.eye(probs.shape[1])[labels]
    return float(np.clip(np.sum(diff * (onehot - climatology)) / denom, 0.0, 1.0))
