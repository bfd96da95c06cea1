"""Daily features of NIFTY with India VIX, vectorised over a date-indexed frame.

Only finite look-back windows are used (no exponential smoothing that reaches back to the
first row), so the last row computed over the last ``WINDOW_ROWS`` rows equals the same row
computed over the whole history. That is what lets the live worker and the trainer share
this code exactly.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from shared import calendar

TRADING_DAYS = calendar.TRADING_DAYS_PER_YEAR
WINDOW_ROWS = 300  # longest look-back (252-day percentile of a 20-day vol) plus margin

FEATURE_NAMES: tuple[str, ...] = (
    "ret_1", "ret_2", "ret_3", "ret_5", "ret_10", "ret_20",
    "gap_pct", "range_pct", "close_location",
    "rv_5", "rv_10", "rv_20", "rv_60", "parkinson_10",
    "sigma20_daily", "atr_14", "atr_14_pct",
    "vix", "vix_change_1", "vix_change_5", "vix_pct_252", "rv_pct_252", "iv_rv_spread",
    "rsi_14", "sma_ratio_20", "sma_ratio_50", "sma_ratio_200", "bollinger_b_20",
    "dist_high_20", "dist_low_20", "trend_strength_20",
    "day_of_week", "days_to_expiry", "sessions_to_expiry",
)

SEQUENCE_FEATURES: tuple[str, ...] = (
    "ret_1", "gap_pct", "range_pct", "close_location", "rv_5", "rv_20", "vix",
    "vix_change_1", "iv_rv_spread", "rsi_14", "sma_ratio_20", "sma_ratio_50", "atr_14_pct",
)
SEQUENCE_LENGTH = 60

INPUT_COLUMNS = ("open", "high", "low", "close", "vix")


def _rolling_percentile(values: pd.Series, window: int) -> pd.Series:
    """Share of the last ``window`` values (this one included) at or below the current one."""
    arr = values.to_numpy(dtype=float)
    out = np.full(arr.shape, np.nan)
    if len(arr) >= window:
        windows = np.lib.stride_tricks.sliding_window_view(arr, window)
        shares = (windows <= arr[window - 1 :, None]).mean(axis=1)
        shares[np.isnan(windows).any(axis=1)] = np.nan
        out[window - 1 :] = shares
    return pd.Series(out, index=values.index)


def compute_daily_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Features for every row of ``frame`` (index: session dates ascending; columns
    open, high, low, close of NIFTY and vix = the India VIX close known on that date)."""
    missing = [c for c in INPUT_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"daily frame lacks columns {missing}")
    o, h, l, c, vix = (frame[col].astype(float) for col in INPUT_COLUMNS)
    log_c = np.log(c)
    r1 = log_c.diff()
    prev_c = c.shift(1)
    f: dict[str, pd.Series | np.ndarray | list[int]] = {}
    for n in (1, 2, 3, 5, 10, 20):
        f[f"ret_{n}"] = log_c.diff(n)
    f["gap_pct"] = o / prev_c - 1
    f["range_pct"] = (h - l) / c
    f["close_location"] = ((c - l) / (h - l)).where(h > l, 0.5)
    for n in (5, 10, 20, 60):
        f[f"rv_{n}"] = r1.rolling(n).std() * np.sqrt(TRADING_DAYS)
    f["parkinson_10"] = np.sqrt(
        (np.log(h / l) ** 2).rolling(10).mean() / (4 * np.log(2)) * TRADING_DAYS
    )
    f["sigma20_daily"] = r1.rolling(20).std()
    true_range = pd.concat([h - l, (h - prev_c).abs(), (l - prev_c).abs()], axis=1).max(axis=1)
    f["atr_14"] = true_range.rolling(14).mean()
    f["atr_14_pct"] = f["atr_14"] / c
    f["vix"] = vix
    f["vix_change_1"] = np.log(vix).diff()
    f["vix_change_5"] = np.log(vix).diff(5)
    f["vix_pct_252"] = _rolling_percentile(vix, TRADING_DAYS)
    f["rv_pct_252"] = _rolling_percentile(f["rv_20"], TRADING_DAYS)
    f["iv_rv_spread"] = vix / 100 - f["rv_20"]
    gains = r1.clip(lower=0).rolling(14).mean()
    losses = (-r1.clip(upper=0)).rolling(14).mean()
    f["rsi_14"] = 100 - 100 / (1 + gains / losses.replace(0, np.nan))
    for n in (20, 50, 200):
        f[f"sma_ratio_{n}"] = c / c.rolling(n).mean() - 1
    mean20, std20 = c.rolling(20).mean(), c.rolling(20).std()
    f["bollinger_b_20"] = (c - (mean20 - 2 * std20)) / (4 * std20)
    f["dist_high_20"] = c / h.rolling(20).max() - 1
    f["dist_low_20"] = c / l.rolling(20).min() - 1
    f["trend_strength_20"] = log_c.diff(20).abs() / r1.abs().rolling(20).sum()
    dates = [calendar.to_date(d) for d in frame.index]
    f["day_of_week"] = [d.weekday() for d in dates]
    expiry_info = [calendar.days_to_expiry(d) for d in dates]
    f["days_to_expiry"] = [e[1] for e in expiry_info]
    f["sessions_to_expiry"] = [e[2] for e in expiry_info]
    table = pd.DataFrame({name: np.asarray(f[name], dtype=float) for name in FEATURE_NAMES},
                         index=frame.index)
    return table.mask(~np.isfinite(table))


def sequence_window(features: pd.DataFrame, length: int = SEQUENCE_LENGTH) -> np.ndarray:
    """The last ``length`` rows of the sequence features (rows, features), NaN where unknown."""
    return features[list(SEQUENCE_FEATURES)].tail(length).to_numpy(dtype=np.float32)
