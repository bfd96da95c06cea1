"""Does a probability forecast beat its baseline on a held-out fold, by a margin that is
more than noise? The gate that decides whether a model or its baseline is published."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from services.trainer.metrics import ece
from shared.models import calibration

# One-sided 5 %: the model's held-out Brier improvement must be this many standard errors
# above zero. Fixed a priori (not tuned on the bundled period).
MIN_SKILL_T = 1.645
CONSTANT_SPREAD = 1e-6  # forecasts whose spread over the fold is below this are constant


@dataclass(frozen=True)
class Gate:
    live: bool  # publish the model (True) or the baseline (False)
    reason: str
    samples: int
    brier_skill: float
    skill_t: float
    ece: float
    ece_baseline: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def skill_t_stat(loss_model: np.ndarray, loss_base: np.ndarray, block: int) -> float:
    """t statistic of the mean per-row loss improvement (baseline - model), with rows
    averaged over non-overlapping blocks of ``block`` rows so an h-session label that
    overlaps its neighbours is not counted h times."""
    gain = loss_base - loss_model
    n_blocks = len(gain) // max(block, 1)
    if n_blocks < 2:
        return float("nan")
    means = gain[: n_blocks * block].reshape(n_blocks, block).mean(axis=1)
    se = float(means.std(ddof=1)) / np.sqrt(n_blocks)
    mean = float(means.mean())
    if se == 0:
        return float("inf") if mean > 0 else 0.0 if mean == 0 else float("-inf")
    return mean / se


def skill_gate(probs: np.ndarray, baseline: np.ndarray, labels: np.ndarray, block: int) -> Gate:
    """Gate a (n, classes) forecast against a baseline on held-out rows in time order: live
    only if it is not constant, its Brier improvement is significant (``MIN_SKILL_T``) and
    its top-label calibration error is no worse than the baseline's."""
    labels = labels.astype(int)
    loss_m = calibration.brier_rows(probs, labels)
    loss_b = calibration.brier_rows(baseline, labels)
    skill = 1 - float(loss_m.mean()) / float(loss_b.mean()) if loss_b.mean() > 0 else 0.0
    t = skill_t_stat(loss_m, loss_b, block)
    top_m, top_b = probs.argmax(1), baseline.argmax(1)
    ece_m = ece(probs.max(1), (top_m == labels).astype(float))
    ece_b = ece(baseline.max(1), (top_b == labels).astype(float))
    if float(np.ptp(probs, axis=0).max()) < CONSTANT_SPREAD:
        live, reason = False, "forecast constant over the held-out fold"
    elif not t >= MIN_SKILL_T:
        live, reason = False, f"held-out Brier gain not significant (t={t:.2f} < {MIN_SKILL_T})"
    elif ece_m > ece_b:
        live, reason = False, f"calibration error {ece_m:.3f} above the baseline's {ece_b:.3f}"
    else:
        live, reason = True, f"held-out Brier skill {skill:+.1%} (t={t:.2f})"
    return Gate(live, reason, len(labels), skill, t, ece_m, ece_b)
