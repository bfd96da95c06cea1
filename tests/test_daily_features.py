"""The numpy daily features agree with their plain pandas definitions on real history."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shared.features.daily import TRADING_DAYS, compute_daily_features
from shared.features.history import load_daily_csv, load_daily_csvs, load_history
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


def test_the_later_daily_files_continue_the_bundled_history(tmp_path: Path) -> None:
    """The bars shipped beside the option chain start where the bundled history ends, so the
    two read as one series; a date in two files is refused, not silently doubled."""
    files = [DATA_DIR / "nifty50_daily.csv", DATA_DIR / "nifty50_daily_2025-07_2026-02.csv"]
    both = load_daily_csvs(files[::-1])
    assert both.index.is_monotonic_increasing
    assert len(both) == sum(len(load_daily_csv(f)) for f in files)
    assert f"{both.index[-1]:%Y-%m-%d}" == "2026-02-06"
    overlap = tmp_path / "overlap.csv"
    load_daily_csv(files[1]).iloc[:3].to_csv(overlap)
    with pytest.raises(ValueError, match="2025-07-01"):
        load_daily_csvs([files[1], overlap])
