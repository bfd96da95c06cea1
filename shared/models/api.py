"""The contract between the trained models and the engines that use them.

``shared.models.loading.load_model(model_dir, name)`` returns one of these (or raises
``ModelLoadError`` naming the model and the reason). Engines depend on this module only.
All probabilities are calibrated, out-of-sample-checked numbers in [0, 1].
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from shared.contract.document.seller import VixRegime
from shared.contract.schemas import ModelRef

HORIZONS: dict[str, int] = {"t1": 1, "t3": 3, "t5": 5, "t10": 10, "t20": 20, "t40": 40}
DIRECTION_CLASSES: tuple[str, ...] = ("up", "neutral", "down")

DailyFeatures = dict[str, float | None]


class ModelLoadError(RuntimeError):
    """A model that cannot be used: missing, tampered, or built for other features."""


class LoadedModel(Protocol):
    ref: ModelRef
    manifest: dict[str, Any]

    def in_sample(self, session_date: str) -> bool:
        """True when ``session_date`` lies inside the training window."""
        ...


class DirectionModel(LoadedModel, Protocol):
    """name: ``direction`` (BiLSTM + XGBoost ensemble, one multi-horizon head)."""

    def predict(self, daily: DailyFeatures, sequence: np.ndarray) -> dict[str, dict[str, float]]:
        """Per horizon key of HORIZONS: {"up", "neutral", "down", "expected_return"}
        (expected_return = expected log return over the horizon)."""
        ...

    def beats_climatology(self, horizon: str) -> bool:
        """Whether the model's out-of-sample log loss beat climatology for this horizon."""
        ...

    def climatology(self, horizon: str) -> dict[str, float]:
        """Training-period class frequencies {"up", "neutral", "down"}."""
        ...


class IntradayDirectionModel(LoadedModel, Protocol):
    """name: ``direction_intraday``: where today's close lands relative to the price now."""

    def predict(self, daily: DailyFeatures, intraday: dict[str, float | None]) -> dict[str, float]:
        """{"up", "neutral", "down", "expected_return"} for ln(close_today / last)."""
        ...


class SellerModel(LoadedModel, Protocol):
    """name: ``seller``."""

    def trap_probability(self, daily: DailyFeatures) -> float:
        """P(realized vol over the next 5 sessions, annualized, exceeds today's VIX)."""
        ...

    def stress_probabilities(self, daily: DailyFeatures) -> dict[str, float]:
        """{"low", "medium", "high"}: terciles of realized vol until expiry."""
        ...

    def breach_probability(
        self, daily: DailyFeatures, spot: float, strike: float, days_to_expiry: int
    ) -> float:
        """P(expiry close beyond ``strike``: above it when strike > spot, else below)."""
        ...

    def breach_probabilities(self, rows: np.ndarray) -> np.ndarray:
        """``breach_probability`` of each row of ``shared.models.seller.breach_inputs``
        (many strikes of many snapshots) in one model call."""
        ...


class BuyerModel(LoadedModel, Protocol):
    """name: ``buyer``."""

    def breakout_probability(self, daily: DailyFeatures, day_offset: int) -> float:
        """P(session t+day_offset breaks the prior session's high or low by >= 0.25 ATR14);
        day_offset 0 = the next session (today, before it opens) .. 5."""
        ...

    def spike_up_probability(self, daily: DailyFeatures) -> float:
        """P(up | next session moves more than 1.5 sigma20)."""
        ...

    def predicted_move_to_expiry(self, daily: DailyFeatures, days_to_expiry: int) -> float:
        """Predicted absolute log move from now to the expiry close."""
        ...


class MeasuredStats(LoadedModel, Protocol):
    """name: ``stats``: rates and calibrations measured from data (never constants)."""

    def safe_range_z(self, regime: str) -> tuple[float, float, float]:
        """(z_lower, z_upper, coverage_target) calibrated walk-forward for this VIX regime."""
        ...

    def hit_rate(self, regime: str) -> dict[str, Any]:
        """{"value", "window", "regime", "samples"}: out-of-sample coverage of the safe range."""
        ...

    def spike_rate(self, regime: str) -> dict[str, Any]:
        """{"value", "window", "regime", "samples"}: share of spike sessions."""
        ...

    def gamma_windows(self) -> list[dict[str, Any]]:
        """[{"block": "09:15-09:45", "score", "window"}]: per 30-minute block, the measured
        share of sessions where that block held the session's largest 30-minute move."""
        ...


def vix_regime(vix: float | None) -> VixRegime:
    """LOW / NORMAL / HIGH India VIX, the regime key the measured stats are split by."""
    if vix is None:
        return "UNKNOWN"
    if vix < 13:
        return "LOW"
    if vix < 20:
        return "NORMAL"
    return "HIGH"
