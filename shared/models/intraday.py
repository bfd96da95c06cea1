"""The ``direction_intraday`` model: where today's close lands relative to the price now."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from shared.models import boosters, calibrated
from shared.models.api import DailyFeatures
from shared.models.base import ArtifactModel
from shared.models.inputs import daily_vector

BOOSTER_FILE = "xgb.ubj"
# Price levels enter as log distance from the last price, so the model never sees index levels.
_LEVELS = ("session_open", "session_high", "session_low", "prior_high", "prior_low")
_AS_IS = (
    "minute_of_session",
    "return_since_open",
    "return_since_prev_close",
    "intraday_rv",
    "range_vs_atr",
    "breakout_up",
    "breakout_down",
    "bars",
)


def intraday_vector(intraday: Mapping[str, float | None]) -> np.ndarray:
    last = intraday.get("last")
    out = []
    for name in _LEVELS:
        level = intraday.get(name)
        if level is not None and last is not None and level > 0 and last > 0:
            out.append(math.log(level / last))
        else:
            out.append(math.nan)
    for name in _AS_IS:
        v = intraday.get(name)
        out.append(math.nan if v is None else v)
    return np.asarray(out, dtype=np.float32)


def model_input(daily: DailyFeatures, intraday: Mapping[str, float | None]) -> np.ndarray:
    return np.concatenate([daily_vector(daily), intraday_vector(intraday)])


class IntradayDirection(ArtifactModel):
    FORMAT = 2  # 2: the calibrated booster (before: a refit on every session)

    def __init__(self, directory: Path, manifest: dict[str, Any]) -> None:
        super().__init__(directory, manifest)
        self.booster = boosters.load(directory / BOOSTER_FILE)

    def predict_batch(self, x: np.ndarray) -> np.ndarray:
        return calibrated.finish(boosters.predict(self.booster, x), self.params)

    def predict(self, daily: DailyFeatures, intraday: dict[str, float | None]) -> dict[str, float]:
        probs = self.predict_batch(model_input(daily, intraday))[0]
        return calibrated.as_dict(probs, self.params)
