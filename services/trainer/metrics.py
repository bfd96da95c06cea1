"""Scores for probabilistic forecasts: log loss, Brier, skill, ECE, reliability bins.

Log loss, Brier score, accuracy and balanced accuracy are scikit-learn's; ECE and the
reliability table (with their counts per bin) are written here, scikit-learn has no ECE.
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

EPS = 1e-6  # a forecast of 0 for what happened costs log(1e-6), not infinity


def log_loss(probs: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log probability of the observed class (``y`` as class indices)."""
    clipped = np.clip(probs, EPS, 1)
    labels = np.arange(probs.shape[1])
    return float(skm.log_loss(y, clipped / clipped.sum(1, keepdims=True), labels=labels))


def brier(probs: np.ndarray, y: np.ndarray) -> float:
    """Multi-class Brier score (sum over classes, range 0..2). Rows are renormalised: float32
    model outputs sum to 1 only to about 1e-7, which sklearn warns about."""
    labels = np.arange(probs.shape[1])
    probs = probs / probs.sum(1, keepdims=True)
    return float(skm.brier_score_loss(y, probs, labels=labels, scale_by_half=False))


def balanced_accuracy(pred: np.ndarray, y: np.ndarray) -> float:
    """Mean recall over the classes that occur in ``y``."""
    return float(skm.balanced_accuracy_score(y, pred))


def ece(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error of top-label (or binary) confidences."""
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(confidence, edges) - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.mean() * abs(confidence[m].mean() - correct[m].mean())
    return float(total)


def reliability(p: np.ndarray, outcome: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Per probability bin: mean forecast, observed frequency, count."""
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
    return [
        {
            "forecast": float(p[idx == b].mean()),
            "observed": float(outcome[idx == b].mean()),
            "count": int((idx == b).sum()),
        }
        for b in range(bins)
        if np.any(idx == b)
    ]


def multiclass_report(probs: np.ndarray, y: np.ndarray, clim: np.ndarray) -> dict[str, float]:
    """Model vs climatology (per-row training frequencies) vs majority class."""
    y = y.astype(int)
    pred = probs.argmax(1)
    majority = clim.argmax(1)
    b, b_clim = brier(probs, y), brier(clim, y)
    return {
        "samples": len(y),
        "accuracy": float(skm.accuracy_score(y, pred)),
        "balanced_accuracy": balanced_accuracy(pred, y),
        "log_loss": log_loss(probs, y),
        "brier": b,
        "ece": ece(probs.max(1), (pred == y).astype(float)),
        "accuracy_majority": float(skm.accuracy_score(y, majority)),
        "balanced_accuracy_majority": balanced_accuracy(majority, y),
        "log_loss_climatology": log_loss(clim, y),
        "brier_climatology": b_clim,
        "brier_skill_vs_climatology": 1 - b / b_clim,
    }


def binary_report(p: np.ndarray, y: np.ndarray, base: np.ndarray) -> dict[str, float]:
    probs = np.stack([1 - p, p], 1)
    bases = np.stack([1 - base, base], 1)
    yi = y.astype(int)
    b, b_base = brier(probs, yi), brier(bases, yi)
    return {
        "samples": len(y),
        "accuracy": float(np.mean((p >= 0.5) == (y == 1))),
        "log_loss": log_loss(probs, yi),
        "log_loss_base_rate": log_loss(bases, yi),
        "brier": b / 2,
        "brier_base_rate": b_base / 2,
        "brier_skill": 1 - b / b_base,
        "ece": ece(p, y.astype(float)),
        "observed_rate": float(np.mean(y)),
        "mean_forecast": float(np.mean(p)),
    }
