"""The numpy daily features agree with their plain pandas definitions on real history."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shared.features.daily import TRADING_DAYS, compute_daily_features
from shared.features.history import load_history
from tests.pipeline import DATA_DIR


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return load_history(DATA_DIR, end="2024-12-31")


def pandas_reference(frame: pd.DataFrame) -> dict[str, pd.Series]:
    c, h, lo = frame["close"], frame["high"], frame["low"]
    r1 = np.log(c).diff()
    prev_c = c.shift(1)
    true_range = pd.concat([h - lo, (h - prev_c).abs(), (lo - prev_c).abs()], axis=1).max(axis=1)
    gains, losses = r1.clip(lower=0).rolling(14).mean(), (-r1.clip(upper=0)).rolling(14).mean()
    return {
        "ret_5": np.log(c).diff(5),
        "rv_20": r1.rolling(20).std() * np.sqrt(TRADING_DAYS),
        "atr_14": true_range.rolling(14).mean(),
        "rsi_14": 100 - 100 / (1 + gains / losses.replace(0, np.nan)),
        "sma_ratio_200": c / c.rolling(200).mean() - 1,
        "dist_high_20": c / h.rolling(20).max() - 1,
        "trend_strength_20": np.log(c).diff(20).abs() / r1.abs().rolling(20).sum(),
    }


def test_matches_pandas_definitions(history: pd.DataFrame) -> None:
    features = compute_daily_features(history)
    for name, expected in pandas_reference(history).items():
        got = features[name]
        assert (got.isna() == expected.isna()).all(), name
        np.testing.assert_allclose(got.dropna(), expected.dropna(), rtol=1e-7, err_msg=name)


def test_unknown_values_are_nan_not_inf(history: pd.DataFrame) -> None:
    features = compute_daily_features(history.head(30))
    assert np.isfinite(features.to_numpy()[~features.isna().to_numpy()]).all()
    assert features["sma_ratio_200"].isna().all() and features["ret_1"].iloc[1:].notna().all()
