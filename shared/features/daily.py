"""Daily features of NIFTY with India VIX, vectorised over a date-indexed frame.

Only finite look-back windows are used (no exponential smoothing that reaches back to the
first row), so the last row computed over the last ``WINDOW_ROWS`` rows equals the same row
computed over the whole history. That is what lets the live worker and the trainer share
this code exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from functools import lru_cache

import numpy as np
import pandas as pd

from shared.features.volatility import VOLATILITY_FEATURE_NAMES, volatility_features
from shared.market import calendar

TRADING_DAYS = calendar.TRADING_DAYS_PER_YEAR
WINDOW_ROWS = 300  # longest look-back (252-day percentile of a 20-day vol) plus margin

FEATURE_NAMES: tuple[str, ...] = (
    "ret_1",
    "ret_2",
    "ret_3",
    "ret_5",
    "ret_10",
    "ret_20",
    "gap_pct",
    "range_pct",
    "close_location",
    "rv_5",
    "rv_10",
    "rv_20",
    "rv_60",
    "parkinson_10",
    "sigma20_daily",
    "atr_14",
    "atr_14_pct",
    "vix",
    "vix_change_1",
    "vix_change_5",
    "vix_pct_252",
    "rv_pct_252",
    "iv_rv_spread",
    "rsi_14",
    "sma_ratio_20",
    "sma_ratio_50",
    "sma_ratio_200",
    "bollinger_b_20",
    "dist_high_20",
    "dist_low_20",
    "trend_strength_20",
    "day_of_week",
    "days_to_expiry",
    "sessions_to_expiry",
    *VOLATILITY_FEATURE_NAMES,  # range-based and HAR realised vols (shared/features/volatility)
)

SEQUENCE_FEATURES: tuple[str, ...] = (
    "ret_1",
    "gap_pct",
    "range_pct",
    "close_location",
    "rv_5",
    "rv_20",
    "vix",
    "vix_change_1",
    "iv_rv_spread",
    "rsi_14",
    "sma_ratio_20",
    "sma_ratio_50",
    "atr_14_pct",
)
SEQUENCE_LENGTH = 60

INPUT_COLUMNS = ("open", "high", "low", "close", "vix")


def _lag(x: np.ndarray, n: int) -> np.ndarray:
    out = np.full(x.shape, np.nan)
    out[n:] = x[:-n]
    return out


def _rolling(x: np.ndarray, window: int, reduce: Callable[..., np.ndarray]) -> np.ndarray:
    """``reduce`` over each trailing window; NaN until the window is full or if it holds a
    NaN (the semantics of pandas' ``rolling(window)`` with its default ``min_periods``)."""
    out = np.full(x.shape, np.nan)
    if len(x) >= window:
        out[window - 1 :] = reduce(np.lib.stride_tricks.sliding_window_view(x, window), axis=1)
    return out


def _rolling_std(x: np.ndarray, window: int) -> np.ndarray:
    return _rolling(x, window, lambda w, axis: w.std(axis=axis, ddof=1))


def _rolling_percentile(x: np.ndarray, window: int) -> np.ndarray:
    """Share of the last ``window`` values (this one included) at or below the current one."""
    out = np.full(x.shape, np.nan)
    if len(x) >= window:
        windows = np.lib.stride_tricks.sliding_window_view(x, window)
        shares = (windows <= x[window - 1 :, None]).mean(axis=1)
        shares[np.isnan(windows).any(axis=1)] = np.nan
        out[window - 1 :] = shares
    return out


@lru_cache(maxsize=8192)
def _calendar_row(day: date) -> tuple[int, int, int]:
    """(weekday, calendar days to expiry, sessions to expiry) of one session date, seen at
    its close: an expiry day's row already targets the next weekly expiry."""
    _, days, sessions = calendar.days_to_expiry(day, at_close=True)
    return day.weekday(), days, sessions


def compute_daily_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Features for every row of ``frame`` (index: session dates ascending; columns
    open, high, low, close of NIFTY and vix = the India VIX close known on that date).

    Plain numpy over trailing windows: the live worker calls this once per session on a
    ``WINDOW_ROWS`` frame, where pandas' per-operation overhead used to dominate.
    """
    missing = [c for c in INPUT_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"daily frame lacks columns {missing}")
    o, h, lo, c, vix = (frame[col].to_numpy(dtype=float) for col in INPUT_COLUMNS)
    f: dict[str, np.ndarray] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        log_c = np.log(c)
        r1 = log_c - _lag(log_c, 1)
        prev_c = _lag(c, 1)
        for n in (1, 2, 3, 5, 10, 20):
            f[f"ret_{n}"] = log_c - _lag(log_c, n)
        f["gap_pct"] = o / prev_c - 1
        f["range_pct"] = (h - lo) / c
        f["close_location"] = np.where(h > lo, (c - lo) / (h - lo), 0.5)
        for n in (5, 10, 20, 60):
            f[f"rv_{n}"] = _rolling_std(r1, n) * np.sqrt(TRADING_DAYS)
        f["parkinson_10"] = np.sqrt(
            _rolling(np.log(h / lo) ** 2, 10, np.mean) / (4 * np.log(2)) * TRADING_DAYS
        )
        f["sigma20_daily"] = _rolling_std(r1, 20)
        # max over the three ranges, skipping the unknown previous close of the first row
        true_range = np.fmax(np.fmax(h - lo, np.abs(h - prev_c)), np.abs(lo - prev_c))
        f["atr_14"] = _rolling(true_range, 14, np.mean)
        f["atr_14_pct"] = f["atr_14"] / c
        log_vix = np.log(vix)
        f["vix"] = vix
        f["vix_change_1"] = log_vix - _lag(log_vix, 1)
        f["vix_change_5"] = log_vix - _lag(log_vix, 5)
        f["vix_pct_252"] = _rolling_percentile(vix, TRADING_DAYS)
        f["rv_pct_252"] = _rolling_percentile(f["rv_20"], TRADING_DAYS)
        f["iv_rv_spread"] = vix / 100 - f["rv_20"]
        gains = _rolling(np.clip(r1, 0, None), 14, np.mean)
        losses = _rolling(-np.clip(r1, None, 0), 14, np.mean)
        f["rsi_14"] = 100 - 100 / (1 + gains / np.where(losses == 0, np.nan, losses))
        for n in (20, 50, 200):
            f[f"sma_ratio_{n}"] = c / _rolling(c, n, np.mean) - 1
        mean20, std20 = _rolling(c, 20, np.mean), _rolling_std(c, 20)
        f["bollinger_b_20"] = (c - (mean20 - 2 * std20)) / (4 * std20)
        f["dist_high_20"] = c / _rolling(h, 20, np.max) - 1
        f["dist_low_20"] = c / _rolling(lo, 20, np.min) - 1
        f["trend_strength_20"] = np.abs(f["ret_20"]) / _rolling(np.abs(r1), 20, np.sum)
        f.update(volatility_features(o, h, lo, c, vix, TRADING_DAYS))
    index = frame.index
    dates = index.date if isinstance(index, pd.DatetimeIndex) else map(calendar.to_date, index)
    rows = [_calendar_row(d) for d in dates]
    f["day_of_week"], f["days_to_expiry"], f["sessions_to_expiry"] = (
        (np.array(column, dtype=float) for column in zip(*rows, strict=True))
        if rows
        else (np.array([]),) * 3
    )
    table = np.column_stack([f[name] for name in FEATURE_NAMES]).astype(float)
    table[~np.isfinite(table)] = np.nan
    return pd.DataFrame(table, index=frame.index, columns=list(FEATURE_NAMES))


def sequence_window(features: pd.DataFrame, length: int = SEQUENCE_LENGTH) -> np.ndarray:
    """The last ``length`` rows of the sequence features (rows, features), NaN where unknown."""
    return features[list(SEQUENCE_FEATURES)].tail(length).to_numpy(dtype=np.float32)
