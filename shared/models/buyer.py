"""The ``buyer`` model: breakout odds, spike direction, predicted move to expiry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from shared.features.daily import FEATURE_NAMES
from shared.models import boosters
from shared.models.api import DailyFeatures
from shared.models.base import ArtifactModel
from shared.models.inputs import daily_vector

BREAKOUT_FILE, SPIKE_FILE, MOVE_FILE = "breakout.ubj", "spike.ubj", "move.ubj"
MAX_DAY_OFFSET = 5
_DTE = FEATURE_NAMES.index("days_to_expiry")
_STE = FEATURE_NAMES.index("sessions_to_expiry")


def breakout_input(daily: DailyFeatures, day_offset: int) -> np.ndarray:
    return np.append(daily_vector(daily), np.float32(day_offset))


def move_input(daily: DailyFeatures, days_to_expiry: int) -> np.ndarray:
    """Daily features with the asked days to expiry; sessions to expiry is not an input."""
    x = daily_vector(daily)
    x[_DTE] = days_to_expiry
    x[_STE] = np.nan
    return x


class BuyerModels(ArtifactModel):
    FORMAT = 2  # 2: the gated spike booster (before: a refit on every spike session)

    def __init__(self, directory: Path, manifest: dict[str, Any]) -> None:
        super().__init__(directory, manifest)
        self.breakout = boosters.load(directory / BREAKOUT_FILE)
        self.spike = boosters.load(directory / SPIKE_FILE)
        self.move = boosters.load(directory / MOVE_FILE)

    def breakout_probability(self, daily: DailyFeatures, day_offset: int) -> float:
        if not 0 <= day_offset <= MAX_DAY_OFFSET:
            raise ValueError(f"day_offset {day_offset} outside 0..{MAX_DAY_OFFSET}")
        return float(boosters.predict(self.breakout, breakout_input(daily, day_offset))[0])

    def spike_up_probability(self, daily: DailyFeatures) -> float:
        """P(up | the next session is a spike), shrunk toward the training base rate by the
        weight its held-out skill earned (weight 0: exactly the base rate)."""
        weight = float(self.params["spike_shrink_weight"])
        base = float(self.params["spike_base_rate"])
        if weight == 0:
            return base
        p = float(boosters.predict(self.spike, daily_vector(daily))[0])
        return weight * p + (1 - weight) * base

    def spike_source(self) -> str:
        """``model``, or ``climatology`` where the published value is the base rate."""
        return "model" if float(self.params["spike_shrink_weight"]) > 0 else "climatology"

    def predicted_move_to_expiry(self, daily: DailyFeatures, days_to_expiry: int) -> float:
        return max(0.0, float(boosters.predict(self.move, move_input(daily, days_to_expiry))[0]))
