"""The ``direction`` model: BiLSTM + per-horizon XGBoost, ensembled, temperature-calibrated
and shrunk toward climatology with weights fitted out of sample. A horizon with weight 0
publishes climatology itself (``source``) and must be labelled so, never as a model."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from shared.models import boosters, calibration, direction_net
from shared.models.api import DIRECTION_CLASSES, DailyFeatures
from shared.models.base import ArtifactModel
from shared.models.inputs import daily_vector, normalise_sequences

LSTM_FILE = "lstm.safetensors"


def booster_file(horizon: str) -> str:
    return f"xgb_{horizon}.ubj"


def combine(lstm_probs: np.ndarray, xgb_probs: np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
    """Ensemble (n, horizons, 3) raw probabilities into the published ones: weighted mean,
    temperature per horizon, then shrink toward climatology per horizon."""
    w = params["lstm_weight"]
    raw = w * lstm_probs + (1 - w) * xgb_probs
    out = np.empty(raw.shape)  # float64: a weight-0 horizon is climatology to the last bit
    for j, h in enumerate(params["horizons"]):
        cal = calibration.apply_temperature(raw[:, j], params["temperature"][h])
        out[:, j] = calibration.shrink(
            cal, np.asarray(params["climatology"][h]), params["shrink_weight"][h]
        )
    return out


class DirectionEnsemble(ArtifactModel):
    FORMAT = 2  # 2: the gated base models and their climatology (before: a refit)

    def __init__(self, directory: Path, manifest: dict[str, Any]) -> None:
        super().__init__(directory, manifest)
        torch.set_num_threads(direction_net.TORCH_THREADS)  # one snapshot at a time
        p = self.params
        self.horizons: list[str] = p["horizons"]
        self.net = direction_net.load(directory / LSTM_FILE, direction_net.NetConfig(**p["net"]))
        self.boosters = [boosters.load(directory / booster_file(h)) for h in self.horizons]
        self.seq_mean = np.asarray(p["sequence_mean"], dtype=np.float32)
        self.seq_std = np.asarray(p["sequence_std"], dtype=np.float32)
        self.class_returns = np.asarray([p["class_mean_return"][h] for h in self.horizons])

    def raw_batch(self, daily: np.ndarray, sequences: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The BiLSTM's and the boosters' (n, horizons, 3) probabilities, before ``combine``."""
        lstm = direction_net.predict_proba(
            self.net, normalise_sequences(sequences, self.seq_mean, self.seq_std)
        )
        return lstm, np.stack([boosters.predict(b, daily) for b in self.boosters], axis=1)

    def predict_batch(self, daily: np.ndarray, sequences: np.ndarray) -> np.ndarray:
        """(n, horizons, 3) probabilities for daily feature rows and raw sequence windows."""
        return combine(*self.raw_batch(daily, sequences), self.params)

    def predict(self, daily: DailyFeatures, sequence: np.ndarray) -> dict[str, dict[str, float]]:
        probs = self.predict_batch(daily_vector(daily), np.asarray(sequence, dtype=np.float32))[0]
        expected = (probs * self.class_returns).sum(axis=1)
        return {
            h: {
                **{c: float(probs[j, k]) for k, c in enumerate(DIRECTION_CLASSES)},
                "expected_return": float(expected[j]),
            }
            for j, h in enumerate(self.horizons)
        }

    def beats_climatology(self, horizon: str) -> bool:
        return bool(self.params["beats_climatology"][horizon])

    def source(self, horizon: str) -> str:
        """``model`` where the ensemble carries weight, ``climatology`` where its output is
        exactly the training window's class frequencies."""
        return "model" if self.params["shrink_weight"][horizon] > 0 else "climatology"

    def climatology(self, horizon: str) -> dict[str, float]:
        return dict(
            zip(DIRECTION_CLASSES, map(float, self.params["climatology"][horizon]), strict=True)
        )
