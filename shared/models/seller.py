"""The ``seller`` model: the volatility core (shared/models/volatility.py) as one artifact,
JSON parameters plus, when it won out of sample, an XGBoost head in XGBoost's own format.

Every seller/buyer volatility signal comes from the core's one distribution. Which signals
are live from the model and which from their baseline is decided by the trainer on the
fold's validation window and published in ``params["selection"]``.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from shared.models import boosters
from shared.models.api import DailyFeatures
from shared.models.base import ArtifactModel
from shared.models.volatility import HAR_INPUTS, STRESS_CLASSES, VolatilityCore, har_design

HEAD_FILE = "vol_head.ubj"  # present only when the boosted head beat the HAR head
MIN_DAYS_TO_EXPIRY = 1.0  # a same-day expiry is measured as one calendar day of variance
SIGNALS = ("trap", "stress", "move", "expiry_range")
__all__ = ["HEAD_FILE", "SIGNALS", "STRESS_CLASSES", "SellerModels", "distance_sigma"]


def distance_sigma(spot: float, strike: float, vix: float | None, days_to_expiry: float) -> float:
    """|ln(K/S)| / (σ·√(T/365)), σ = VIX/100: how many implied sigmas away the strike is."""
    if vix is None or not vix > 0 or spot <= 0 or strike <= 0:
        return math.nan
    t = max(float(days_to_expiry), MIN_DAYS_TO_EXPIRY) / 365.0
    return abs(math.log(strike / spot)) / (vix / 100.0 * math.sqrt(t))


def head_input(daily: DailyFeatures) -> np.ndarray:
    """The boosted head's inputs: the LHAR design without its constant."""
    return har_design(daily)[:, 1:].astype(np.float32)


class SellerModels(ArtifactModel):
    FORMAT = 2  # 2: the volatility core's trap link and move blend

    def __init__(self, directory: Path, manifest: dict[str, Any]) -> None:
        super().__init__(directory, manifest)
        head = None
        if self.params["core"]["head"] == "xgb":
            booster = boosters.load(directory / HEAD_FILE)

            @lru_cache(maxsize=64)  # one snapshot asks the head ~16 times for the same row
            def predict(inputs: tuple[float | None, ...]) -> float:
                row = dict(zip(HAR_INPUTS, inputs, strict=True))
                return float(boosters.predict(booster, head_input(row))[0])

            head = lambda daily: predict(tuple(daily.get(k) for k in HAR_INPUTS))  # noqa: E731
        self.core = VolatilityCore(self.params["core"], head)

    def selection(self, signal: str) -> dict[str, Any]:
        """{"live": "model" | "baseline", "baseline": name, "metric", "model_score",
        "baseline_score", "skill", "samples", "window"} from the trainer's validation."""
        return dict(self.params["selection"][signal])

    def trap_probability(self, daily: DailyFeatures) -> float:
        return self.core.trap_probability(daily)

    def stress_probabilities(self, daily: DailyFeatures) -> dict[str, float]:
        return self.core.stress_probabilities(daily, _days(daily))

    def breach_probability(
        self,
        daily: DailyFeatures,
        spot: float,
        strike: float,
        days_to_expiry: float,
        sessions_to_expiry: float | None = None,
    ) -> float:
        sessions = _sessions(daily) if sessions_to_expiry is None else sessions_to_expiry
        return self.core.breach_probability(daily, spot, strike, sessions, days_to_expiry)

    def breach_probabilities(
        self,
        daily: DailyFeatures,
        spot: float,
        strikes: list[float],
        days_to_expiry: float,
        sessions_to_expiry: float | None = None,
    ) -> list[float]:
        sessions = _sessions(daily) if sessions_to_expiry is None else sessions_to_expiry
        return self.core.breach_probabilities(daily, spot, strikes, sessions, days_to_expiry)

    def range_bounds(
        self,
        daily: DailyFeatures,
        spot: float,
        coverage: float,
        days_to_expiry: float,
        sessions_to_expiry: float | None = None,
    ) -> tuple[float, float]:
        sessions = _sessions(daily) if sessions_to_expiry is None else sessions_to_expiry
        return self.core.range_bounds(daily, spot, sessions, days_to_expiry, coverage)

    def expected_abs_move(
        self, daily: DailyFeatures, days_to_expiry: float, sessions_to_expiry: float | None = None
    ) -> float:
        """E|ln(C_expiry/C_t)| under the core's distribution."""
        sessions = _sessions(daily) if sessions_to_expiry is None else sessions_to_expiry
        return self.core.expected_abs_move(daily, sessions, days_to_expiry)

    def trap_base_rate(self) -> float:
        """The trap baseline: the training window's share of RV5 > VIX sessions."""
        return float(self.params["trap_base_rate"])

    def stress_climatology(self, regime: str) -> dict[str, float]:
        """The stress baseline: training class frequencies within the VIX regime."""
        table = self.params["stress_climatology"]
        return dict(table.get(regime, table["ALL"]))


def _days(daily: DailyFeatures) -> float:
    v = daily.get("days_to_expiry")
    if v is None:
        raise ValueError("features lack days_to_expiry")
    return float(v)


def _sessions(daily: DailyFeatures) -> float:
    v = daily.get("sessions_to_expiry")
    if v is None:
        raise ValueError("features lack sessions_to_expiry")
    return float(v)
