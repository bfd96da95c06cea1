"""Training labels, each a function of data up to its own horizon only.

Every function takes the daily frame (index: session dates; open, high, low, close, vix) or
its columns and returns a Series aligned with it: the value at row t is the outcome seen
from session t's close, NaN where the horizon runs past the data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from shared.features.intraday import BREAKOUT_ATR_FRACTION
from shared.market import calendar
from shared.market.calendar import TRADING_DAYS_PER_YEAR

NEUTRAL_BAND_SIGMA = 0.25  # DESIGN: NEUTRAL when |r| < 0.25*sigma20*sqrt(h)
SPIKE_SIGMA = 1.5
CLASS_UP, CLASS_NEUTRAL, CLASS_DOWN = 0, 1, 2  # order of api.DIRECTION_CLASSES


def forward_log_return(close: pd.Series, sessions: int) -> pd.Series:
    """ln(C[t+sessions] / C[t])."""
    log_c = np.log(close.astype(float))
    return log_c.shift(-sessions) - log_c


def classify(log_return: pd.Series | np.ndarray, band: pd.Series | np.ndarray) -> np.ndarray:
    """UP / NEUTRAL / DOWN class indices (float, NaN where the return or band is unknown)."""
    r = np.asarray(log_return, dtype=float)
    b = np.asarray(band, dtype=float)
    out = np.where(r >= b, CLASS_UP, np.where(r <= -b, CLASS_DOWN, CLASS_NEUTRAL)).astype(float)
    out[np.isnan(r) | np.isnan(b)] = np.nan
    return out


def direction_labels(close: pd.Series, sigma20_daily: pd.Series, sessions: int) -> pd.Series:
    """Class of the h-session return; NEUTRAL when |r| < 0.25·σ20·√h."""
    r = forward_log_return(close, sessions)
    band = NEUTRAL_BAND_SIGMA * sigma20_daily * np.sqrt(sessions)
    return pd.Series(classify(r, band), index=close.index)


def forward_realized_vol(close: pd.Series, sessions: int) -> pd.Series:
    """Annualized realized vol (zero-mean) of the daily returns of sessions t+1..t+n."""
    r1 = np.log(close.astype(float)).diff()
    mean_sq = (r1**2).rolling(sessions).mean().shift(-sessions)
    return np.sqrt(mean_sq * TRADING_DAYS_PER_YEAR)


def expiry_positions(index: pd.Index) -> np.ndarray:
    """Row position of the weekly expiry each session's close targets (the next one after it,
    also on an expiry day; the last row on or before the expiry date when the data lacks that
    session); -1 when the expiry is past the data."""
    dates = [calendar.to_date(d) for d in index]
    expiries = pd.to_datetime([calendar.expiry_after_close(d) for d in dates])
    pos = np.searchsorted(pd.DatetimeIndex(index).values, expiries.values, side="right") - 1
    last = pd.Timestamp(index[-1])
    pos = pos.astype(int)
    pos[np.asarray(expiries > last)] = -1
    return pos


def expiry_log_return(close: pd.Series) -> pd.Series:
    """ln(C[expiry] / C[t]) for the expiry session t's close targets; NaN past the data."""
    pos = expiry_positions(close.index)
    c = close.to_numpy(dtype=float)
    out = np.full(len(c), np.nan)
    ok = pos >= 0
    out[ok] = np.log(c[pos[ok]] / c[ok])
    return pd.Series(out, index=close.index)


def realized_vol_to_expiry(close: pd.Series) -> pd.Series:
    """Annualized zero-mean realized vol of the returns from t+1 to the expiry session t's
    close targets (NaN past the data)."""
    pos = expiry_positions(close.index)
    r1 = np.log(close.to_numpy(dtype=float))
    r1 = np.concatenate([[np.nan], np.diff(r1)])
    cum_sq = np.concatenate([[0.0], np.cumsum(np.nan_to_num(r1**2))])
    out = np.full(len(r1), np.nan)
    for t, e in enumerate(pos):
        if e > t:
            out[t] = np.sqrt((cum_sq[e + 1] - cum_sq[t + 1]) / (e - t) * TRADING_DAYS_PER_YEAR)
    return pd.Series(out, index=close.index)


def breakout_labels(frame: pd.DataFrame, atr_14: pd.Series, day_offset: int) -> pd.Series:
    """1 when session t+1+offset trades beyond its prior session's high or low by at least
    0.25·ATR14 (ATR of that prior session), else 0; day_offset 0 is the next session."""
    high, low = frame["high"].astype(float), frame["low"].astype(float)
    prior = day_offset
    target = day_offset + 1
    threshold = BREAKOUT_ATR_FRACTION * atr_14.shift(-prior)
    up = high.shift(-target) - high.shift(-prior) >= threshold
    down = low.shift(-prior) - low.shift(-target) >= threshold
    out = (up | down).astype(float)
    out[high.shift(-target).isna() | threshold.isna()] = np.nan
    return out


def next_session_spike(close: pd.Series, sigma20_daily: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(is_spike, is_up) of the next session: spike when |r[t+1]| > 1.5·σ20[t]."""
    r = forward_log_return(close, 1)
    spike = (r.abs() > SPIKE_SIGMA * sigma20_daily).astype(float)
    up = (r > 0).astype(float)
    unknown = r.isna() | sigma20_daily.isna()
    spike[unknown] = np.nan
    up[r.isna()] = np.nan
    return spike, up
