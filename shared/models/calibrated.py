"""A 3-class probability head's published form: temperature, shrink toward climatology,
expected return from the class mean returns. Shared by the daily and intraday direction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from shared.models import calibration
from shared.models.api import DIRECTION_CLASSES


def finish(raw: np.ndarray, head: Mapping[str, Any]) -> np.ndarray:
    """(n, 3) raw probabilities -> calibrated and shrunk probabilities."""
    cal = calibration.apply_temperature(raw, head["temperature"])
    return calibration.shrink(cal, np.asarray(head["climatology"]), head["shrink_weight"])


def as_dict(probs: np.ndarray, head: Mapping[str, Any]) -> dict[str, float]:
    expected = float(np.dot(probs, head["class_mean_return"]))
    return {
        **{c: float(p) for c, p in zip(DIRECTION_CLASSES, probs, strict=True)},
        "expected_return": expected,
    }
