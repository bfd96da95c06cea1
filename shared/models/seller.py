"""The ``seller`` model: volatility trap, expiry stress and strike-breach probabilities."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shared.models import boosters
from shared.models.api import DailyFeatures
from shared.models.base import ArtifactModel
from shared.models.inputs import daily_vector, vector

TRAP_FILE, STRESS_FILE, BREACH_FILE = "trap.ubj", "stress.ubj", "breach.ubj"
STRESS_CLASSES = ("low", "medium", "high")
MIN_DAYS_TO_EXPIRY = 1.0  # a same-day expiry is measured as one calendar day of variance
BREACH_CONTEXT = ("vix", "rv_5", "rv_20", "iv_rv_spread", "vix_pct_252", "rv_pct_252", "ret_5")


def distance_sigma(spot: float, strike: float, vix: float | None, days_to_expiry: float) -> float:
    """|ln(K/S)| / (σ·√(T/365)), σ = VIX/100: how many implied sigmas away the strike is."""
    if vix is None or not vix > 0 or spot <= 0 or strike <= 0:
        return math.nan
    t = max(float(days_to_expiry), MIN_DAYS_TO_EXPIRY) / 365.0
    return abs(math.log(strike / spot)) / (vix / 100.0 * math.sqrt(t))


def breach_input(
    daily: DailyFeatures, spot: float, strike: float, days_to_expiry: int
) -> np.ndarray:
    return breach_inputs(daily, spot, [strike], days_to_expiry)[0]


def breach_inputs(
    daily: DailyFeatures, spot: float, strikes: Sequence[float], days_to_expiry: int
) -> np.ndarray:
    """The breach model's input rows of several strikes of one snapshot, one per strike."""
    context = vector(daily, BREACH_CONTEXT)
    x = np.empty((len(strikes), 3 + len(context)), dtype=np.float32)
    x[:, 0] = [distance_sigma(spot, k, daily.get("vix"), days_to_expiry) for k in strikes]
    x[:, 1] = [1.0 if k > spot else 0.0 for k in strikes]
    x[:, 2] = float(days_to_expiry)
    x[:, 3:] = context
    return x


class SellerModels(ArtifactModel):
    def __init__(self, directory: Path, manifest: dict[str, Any]) -> None:
        super().__init__(directory, manifest)
        self.trap = boosters.load(directory / TRAP_FILE)
        self.stress = boosters.load(directory / STRESS_FILE)
        self.breach = boosters.load(directory / BREACH_FILE)

    def trap_probability(self, daily: DailyFeatures) -> float:
        return float(boosters.predict(self.trap, daily_vector(daily))[0])

    def stress_probabilities(self, daily: DailyFeatures) -> dict[str, float]:
        probs = boosters.predict(self.stress, daily_vector(daily))[0]
        return {c: float(p) for c, p in zip(STRESS_CLASSES, probs)}

    def breach_probability(
        self, daily: DailyFeatures, spot: float, strike: float, days_to_expiry: int
    ) -> float:
        x = breach_input(daily, spot, strike, days_to_expiry)
        return float(boosters.predict(self.breach, x)[0])

    def breach_probabilities(self, rows: np.ndarray) -> np.ndarray:
        """``breach_probability`` of many (snapshot, strike) rows of ``breach_inputs`` in one
        booster call."""
        return boosters.predict(self.breach, rows).astype(np.float64)
