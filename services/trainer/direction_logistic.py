"""The direction candidate with the simplest form that uses every daily input: a multinomial
logistic regression per horizon on the standardised daily features. Fitted, calibrated and
gated as the ensemble is (``direction.train_direction``): the base model on the training
fold; its ridge strength (from ``C_GRID``), temperature and weight toward climatology on the
calibration fold; the gate on the validation fold. A horizon that fails the gate publishes
the window's climatology."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression

from services.trainer.data import TrainingData
from services.trainer.direction import HORIZON_KEYS, MAX_HORIZON, class_stats, targets, usable_rows
from services.trainer.skill import Gate, skill_gate
from services.trainer.splits import purged_folds
from shared.models import calibration
from shared.models.api import HORIZONS

C_GRID = (0.001, 0.01, 0.1, 1.0)  # inverse ridge strength on standardised inputs
MAX_ITER = 2000


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class Standardiser:
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> Standardiser:
        std = np.nanstd(x, axis=0)
        return cls(np.nan_to_num(np.nanmean(x, axis=0)), np.where(std > 0, std, 1.0))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Standardised rows; a missing input becomes 0, the training mean."""
        return np.nan_to_num((x - self.mean) / self.std, nan=0.0, posinf=0.0, neginf=0.0)


def fit_multinomial(z: np.ndarray, y: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    """(coefficients (3, inputs), intercepts (3,)) of a ridge multinomial logit on classes
    0, 1, 2 (each must occur in ``y``)."""
    model = LogisticRegression(C=c, max_iter=MAX_ITER).fit(z, y.astype(int))
    if list(model.classes_) != [0, 1, 2]:
        raise ValueError(f"a direction class is missing from the training rows: {model.classes_}")
    return model.coef_, model.intercept_


@dataclass(frozen=True)
class Head:
    """One horizon's fitted logit and its calibration, as gated."""

    coef: np.ndarray
    intercept: np.ndarray
    c: float
    temperature: float
    fitted_weight: float  # the calibration fold's weight on the model
    climatology_train: np.ndarray  # the shrink target the gate saw
    climatology_window: np.ndarray  # what a failed horizon publishes
    gate: Gate

    def raw(self, z: np.ndarray) -> np.ndarray:
        return softmax(z @ self.coef.T + self.intercept)

    def model(self, z: np.ndarray) -> np.ndarray:
        """Calibrated and shrunk, whatever the gate said."""
        cal = calibration.apply_temperature(self.raw(z), self.temperature)
        return calibration.shrink(cal, self.climatology_train, self.fitted_weight)

    def shipped(self, z: np.ndarray) -> np.ndarray:
        """What would be published: the model where the gate passed, else climatology."""
        if self.gate.live:
            return self.model(z)
        return np.tile(self.climatology_window, (len(z), 1))


@dataclass(frozen=True)
class LogisticDirection:
    standardiser: Standardiser
    heads: dict[str, Head]

    def predict(self, x: np.ndarray, horizon: str, kind: str) -> np.ndarray:
        """(n, 3) probabilities of ``kind`` raw | model | shipped for daily feature rows."""
        head, z = self.heads[horizon], self.standardiser(x)
        return {"raw": head.raw, "model": head.model, "shipped": head.shipped}[kind](z)


def train_logistic_direction(data: TrainingData) -> LogisticDirection:
    y, r = targets(data)
    rows = usable_rows(data)
    rows = rows[~np.isnan(y[rows, 0])]
    folds = purged_folds(rows, MAX_HORIZON)
    clim_train, _ = class_stats(y, r, folds.train)
    clim_window, _ = class_stats(y, r, rows)
    x = data.features.to_numpy(dtype=float)
    standardiser = Standardiser.fit(x[folds.train])
    z = standardiser(x)
    heads = {}
    for j, h in enumerate(HORIZON_KEYS):
        train, cal, val = (
            f[~np.isnan(y[f, j])] for f in (folds.train, folds.calibrate, folds.validate)
        )
        yt, yc, yv = (y[f, j].astype(int) for f in (train, cal, val))
        fits = {c: fit_multinomial(z[train], yt, c) for c in C_GRID}
        losses = {
            c: calibration.log_loss(softmax(z[cal] @ w.T + b), yc) for c, (w, b) in fits.items()
        }
        c = min(losses, key=lambda k: losses[k])
        coef, intercept = fits[c]
        raw_c = softmax(z[cal] @ coef.T + intercept)
        temperature = calibration.fit_temperature(raw_c, yc)
        clim = np.asarray(clim_train[h])
        weight = calibration.brier_shrink_weight(
            calibration.apply_temperature(raw_c, temperature), yc, clim
        )
        raw_v = softmax(z[val] @ coef.T + intercept)
        shrunk_v = calibration.shrink(
            calibration.apply_temperature(raw_v, temperature), clim, weight
        )
        gate = skill_gate(shrunk_v, np.tile(clim, (len(yv), 1)), yv, block=HORIZONS[h])
        heads[h] = Head(
            coef, intercept, c, temperature, weight, clim, np.asarray(clim_window[h]), gate
        )
    return LogisticDirection(standardiser, heads)
