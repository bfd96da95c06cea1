"""Training profiles: ``full`` for the published models, ``fast`` so tests train in seconds."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Profile:
    name: str
    lstm_epochs: int
    lstm_hidden: int
    xgb_rounds: int
    xgb_params: dict[str, Any] = field(default_factory=dict)
    intraday_every_minutes: int = 15
    seed: int = 20250630

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_TREES = {
    "max_depth": 3,
    "eta": 0.05,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "min_child_weight": 20,
    "lambda": 5.0,
}

FULL = Profile("full", lstm_epochs=12, lstm_hidden=32, xgb_rounds=150, xgb_params=_TREES)
FAST = Profile(
    "fast",
    lstm_epochs=1,
    lstm_hidden=8,
    xgb_rounds=10,
    xgb_params={**_TREES, "max_depth": 2, "eta": 0.3},
    intraday_every_minutes=60,
)
PROFILES = {p.name: p for p in (FULL, FAST)}
