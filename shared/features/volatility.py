"""Realised-volatility estimators from daily OHLC and from 1-minute bars (pure numpy).

Per-session variances (log units, one session):
- Parkinson:       (ln H/L)^2 / (4 ln 2)
- Garman–Klass:    0.5 (ln H/L)^2 - (2 ln 2 - 1) (ln C/O)^2
- Rogers–Satchell: ln(H/C) ln(H/O) + ln(L/C) ln(L/O)   (drift-free)
- Yang–Zhang over n sessions: var(overnight) + k var(open-to-close) + (1-k) mean(RS),
  k = 0.34 / (1.34 + (n+1)/(n-1))

Only NIFTY's OHLC enters: NSE's India VIX "open" is the previous close and carries no
information. Every value at row t uses rows <= t only (trailing windows), so these serve as
live features and, shifted forward, as training targets.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

HAR_DAILY, HAR_WEEKLY, HAR_MONTHLY = 1, 5, 22
RANGE_WINDOW = 20
_LN2 = np.log(2.0)


def _lag(x: np.ndarray, n: int) -> np.ndarray:
    out = np.full(x.shape, np.nan)
    out[n:] = x[:-n]
    return out


def trailing(x: np.ndarray, window: int, reduce: Callable[..., np.ndarray]) -> np.ndarray:
    """``reduce`` over each trailing window; NaN until full or when the window holds a NaN."""
    out = np.full(x.shape, np.nan)
    if len(x) >= window:
        out[window - 1 :] = reduce(np.lib.stride_tricks.sliding_window_view(x, window), axis=1)
    return out


def parkinson_var(h: np.ndarray, lo: np.ndarray) -> np.ndarray:
    return np.log(h / lo) ** 2 / (4 * _LN2)


def garman_klass_var(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> np.ndarray:
    return 0.5 * np.log(h / lo) ** 2 - (2 * _LN2 - 1) * np.log(c / o) ** 2


def rogers_satchell_var(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> np.ndarray:
    return np.log(h / c) * np.log(h / o) + np.log(lo / c) * np.log(lo / o)


def overnight_return(o: np.ndarray, c: np.ndarray) -> np.ndarray:
    """ln(O_t / C_{t-1}); NaN on the first row."""
    return np.log(o / _lag(c, 1))


def yang_zhang_var(
    o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, window: int
) -> np.ndarray:
    """Trailing ``window``-session Yang–Zhang variance per session."""
    k = 0.34 / (1.34 + (window + 1) / (window - 1))
    on = trailing(overnight_return(o, c), window, lambda w, axis: w.var(axis=axis, ddof=1))
    oc = trailing(np.log(c / o), window, lambda w, axis: w.var(axis=axis, ddof=1))
    rs = trailing(rogers_satchell_var(o, h, lo, c), window, np.mean)
    return on + k * oc + (1 - k) * rs


def session_variance(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> np.ndarray:
    """One session's total variance: squared overnight gap + Garman–Klass open-to-close."""
    return overnight_return(o, c) ** 2 + garman_klass_var(o, h, lo, c)


def annualised(variance: np.ndarray, sessions_per_year: float) -> np.ndarray:
    """sqrt(variance per session * sessions per year), NaN for negative variance."""
    with np.errstate(invalid="ignore"):
        return np.sqrt(np.where(variance >= 0, variance, np.nan) * sessions_per_year)


def volatility_features(
    o: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    vix: np.ndarray,
    sessions_per_year: float,
) -> dict[str, np.ndarray]:
    """The range-based and HAR features (annualised vols; ``vrp_log`` = ln(VIX/100 / vol_m))."""
    year = sessions_per_year
    n = RANGE_WINDOW
    f = {
        f"vol_pk_{n}": annualised(trailing(parkinson_var(h, lo), n, np.mean), year),
        f"vol_gk_{n}": annualised(trailing(garman_klass_var(o, h, lo, c), n, np.mean), year),
        f"vol_rs_{n}": annualised(trailing(rogers_satchell_var(o, h, lo, c), n, np.mean), year),
        f"vol_yz_{n}": annualised(yang_zhang_var(o, h, lo, c, n), year),
    }
    daily = session_variance(o, h, lo, c)
    for name, window in (("d", HAR_DAILY), ("w", HAR_WEEKLY), ("m", HAR_MONTHLY)):
        f[f"vol_har_{name}"] = annualised(trailing(daily, window, np.mean), year)
    with np.errstate(divide="ignore", invalid="ignore"):
        f["vrp_log"] = np.log(vix / 100) - np.log(f["vol_har_m"])
    return f


VOLATILITY_FEATURE_NAMES: tuple[str, ...] = (
    f"vol_pk_{RANGE_WINDOW}",
    f"vol_gk_{RANGE_WINDOW}",
    f"vol_rs_{RANGE_WINDOW}",
    f"vol_yz_{RANGE_WINDOW}",
    "vol_har_d",
    "vol_har_w",
    "vol_har_m",
    "vrp_log",
)


def minute_realised_variance(log_close: np.ndarray, session_ids: np.ndarray) -> np.ndarray:
    """Per session (in order of first appearance): the sum of squared 1-minute log returns
    inside the session (the opening gap excluded). Sessions with < 2 bars give NaN."""
    ids, first = np.unique(session_ids, return_index=True)
    order = np.argsort(first)
    out = np.full(len(ids), np.nan)
    for i, sid in enumerate(ids[order]):
        r = np.diff(log_close[session_ids == sid])
        if len(r):
            out[i] = float(np.sum(r**2))
    return out
