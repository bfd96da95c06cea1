"""Labels use no data beyond their own horizon and follow the DESIGN definitions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shared.models import labels
from shared.models.api import HORIZONS
from tests.models_support import short_data


def _altered_after(frame: pd.DataFrame, row: int) -> pd.DataFrame:
    """Same history up to ``row``; everything after replaced by a shuffled, rescaled path."""
    out = frame.copy()
    rng = np.random.default_rng(7)
    tail = out.iloc[row + 1 :]
    out.iloc[row + 1 :, :4] = tail.iloc[rng.permutation(len(tail)), :4].to_numpy() * 1.3
    return out


@pytest.mark.parametrize("sessions", list(HORIZONS.values()))
def test_direction_label_ignores_data_beyond_horizon(sessions: int) -> None:
    data = short_data()
    close, sigma = data.frame["close"], data.features["sigma20_daily"]
    t = 600
    before = labels.direction_labels(close, sigma, sessions)
    altered = _altered_after(data.frame, t + sessions)["close"]
    after = labels.direction_labels(altered, sigma, sessions)
    assert before.iloc[: t + 1].equals(after.iloc[: t + 1])
    assert before.iloc[-sessions:].isna().all()


def test_neutral_band_is_quarter_sigma_root_h() -> None:
    idx = pd.date_range("2024-01-01", periods=4, freq="B")
    close = pd.Series([100.0, 100.2, 99.0, 101.0], index=idx)
    sigma = pd.Series(0.01, index=idx)
    y = labels.direction_labels(close, sigma, 1)
    # ln(100.2/100) = 0.002 < 0.0025 -> neutral; then down; then up; last unknown
    assert y.iloc[:3].tolist() == [labels.CLASS_NEUTRAL, labels.CLASS_DOWN, labels.CLASS_UP]
    assert np.isnan(y.iloc[3])


def test_expiry_and_breakout_labels_ignore_later_data() -> None:
    data = short_data()
    t = 700
    pos = labels.expiry_positions(data.frame.index)
    horizon = max(int(pos[t] - t), 6) + 1
    altered = _altered_after(data.frame, t + horizon)
    for fn in (labels.expiry_log_return, labels.realized_vol_to_expiry):
        assert fn(data.frame["close"]).iloc[: t + 1].equals(fn(altered["close"]).iloc[: t + 1])
    for offset in range(6):
        a = labels.breakout_labels(data.frame, data.features["atr_14"], offset)
        b = labels.breakout_labels(altered, data.features["atr_14"], offset)
        assert a.iloc[: t + 1].equals(b.iloc[: t + 1])
    a = labels.forward_realized_vol(data.frame["close"], 5)
    b = labels.forward_realized_vol(altered["close"], 5)
    assert a.iloc[: t + 1].equals(b.iloc[: t + 1])


def test_expiry_positions_point_at_the_weekly_expiry() -> None:
    data = short_data()
    pos = labels.expiry_positions(data.frame.index)
    for t in (100, 101, 102, 103, 104):
        expiry = data.frame.index[pos[t]]
        assert expiry > data.frame.index[t]  # a close targets the next expiry, never its own
        assert (expiry - data.frame.index[t]).days <= 8  # 8: a holiday moved this one earlier
        assert expiry.weekday() in (3, 2, 1)  # Thursday, or earlier when a holiday moves it
