"""The volatility core: one predictive distribution from which the seller and buyer volatility
signals are all derived (pure; parameters are plain JSON written by services/trainer/vol.py).

- A HAR-type forecast m = E[ln RV5] of the next 5 sessions' realised vol (annualised,
  close-to-close) from ln vol_har_d/w/m and ln(VIX/100) (the variance risk premium
  ln VIX - ln vol_m is spanned by these). Trainer may ship an XGBoost head instead when it
  wins out of sample (``head.kind``).
- The trap P(RV5 > VIX): the residual ln RV5 - m taken as logistic, i.e.
  sigmoid(a + b * (m - ln(VIX/100))), (a, b) fitted by maximum likelihood on the event.
- Empirical residual quantiles of ln RV_to_expiry - m per sessions-to-expiry bucket -> the
  expiry-stress class probabilities.
- The move scale sigma_b * sqrt(n/252), sigma_b = w_core * exp(m) + w_vix * VIX/100 (a
  least-squares combination of the forecast with the implied volatility, fitted on the
  window), and the empirical quantiles of u = ln(C_expiry/C_t) / that scale per VIX regime
  and days-to-expiry bucket, lower and upper tails from the same sample (negative skew
  kept) -> the safe range (two quantiles), the breach curve (its survival function) and the
  expected move to expiry (scale * mean |u|). Range bounds are quantiles of the
  distribution the breach curve integrates, so P(breach at a bound) is the bound's tail
  share by construction, and the move is the mean of the same distribution.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from shared.market.calendar import SESSION_MINUTES, TRADING_DAYS_PER_YEAR
from shared.models.api import vix_regime

HAR_INPUTS: tuple[str, ...] = (
    "vol_har_d",
    "vol_har_w",
    "vol_har_m",
    "vix",
    "ret_1",
    "ret_5",
    "ret_20",
)
_LOG_INPUTS = 4  # the first four enter as logs (VIX as a fraction), the returns as they are
QUANTILE_LEVELS: tuple[float, ...] = tuple(
    float(x)
    for x in np.concatenate(
        [[0.001, 0.002, 0.005], np.round(np.linspace(0.01, 0.99, 99), 4), [0.995, 0.998, 0.999]]
    )
)
POOLED = "ALL"
DTE_BUCKETS: tuple[tuple[str, int, int], ...] = (("0-1", 0, 1), ("2-3", 2, 3), ("4+", 4, 10_000))
STRESS_CLASSES = ("low", "medium", "high")
REQUIRED_PARAMS = (
    "trap_link",
    "move_blend",
    "expiry_residuals",
    "stress_terciles_rv",
    "move_u",
    "move_abs_u",
)


def dte_bucket(days_to_expiry: float) -> str:
    """The days-to-expiry bucket (calendar days) a forecast is calibrated in."""
    d = math.floor(days_to_expiry)
    return next(name for name, lo, hi in DTE_BUCKETS if lo <= d <= hi)


def har_design(values: Mapping[str, Any] | np.ndarray) -> np.ndarray:
    """(rows, 11) LHAR design (Corsi & Renò): 1, ln vol_har_d/w/m, ln(VIX/100), the 1-, 5-
    and 20-session log returns and their negative parts (the leverage effect: falls raise
    future volatility more than rises lower it)."""
    if isinstance(values, Mapping):
        raw = np.asarray([[_num(values.get(k)) for k in HAR_INPUTS]], dtype=float)
    else:
        raw = np.atleast_2d(np.asarray(values, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log(raw[:, :_LOG_INPUTS] * np.array([1.0, 1.0, 1.0, 0.01]))
    logs[~np.isfinite(logs)] = np.nan
    returns = raw[:, _LOG_INPUTS:]
    return np.column_stack([np.ones(len(raw)), logs, returns, np.minimum(returns, 0.0)])


def blend_scale(
    blend: Mapping[str, float],
    sigma: float | np.ndarray,
    vix: float | np.ndarray,
    sessions: float | np.ndarray,
    days: float | np.ndarray,
) -> Any:
    """w_core * sigma * sqrt(n/252) + w_vix * VIX/100 * sqrt(T/365): the core's forecast
    over sessions, the implied volatility over calendar days (it prices weekends too)."""
    minute = 1 / SESSION_MINUTES
    core = sigma * np.sqrt(np.maximum(sessions, minute) / TRADING_DAYS_PER_YEAR)
    implied = vix / 100 * np.sqrt(np.maximum(days, minute) / 365)
    return blend["core"] * core + blend["vix"] * implied


def _num(v: Any) -> float:
    return math.nan if v is None else float(v)


def survival(x: float | np.ndarray, quantiles: Sequence[float]) -> np.ndarray:
    """P(X > x) from the quantiles at QUANTILE_LEVELS (linear between them, the outermost
    tail share beyond them)."""
    q = np.asarray(quantiles, dtype=float)
    levels = np.asarray(QUANTILE_LEVELS)
    return 1.0 - np.interp(x, q, levels, left=0.0, right=1.0).clip(levels[0], levels[-1])


def quantile(level: float, quantiles: Sequence[float]) -> float:
    return float(np.interp(level, QUANTILE_LEVELS, np.asarray(quantiles, dtype=float)))


class VolatilityCore:
    """The distribution; ``params`` as trainer/vol.py writes them, ``head`` the m-forecaster
    (``None`` for a HAR head, else a callable on the feature mapping)."""

    def __init__(self, params: Mapping[str, Any], head: Any | None = None) -> None:
        missing = sorted(set(REQUIRED_PARAMS) - set(params))
        if missing:  # e.g. a version trained by older code: refuse at load, not per signal
            raise ValueError(f"volatility core parameters lack {missing}; retrain the model")
        self.params = params
        self.head = head
        self._coef = np.asarray(params["har"]["coef"], dtype=float) if "har" in params else None
        # one snapshot asks for m a dozen times, and a session's snapshots share their daily
        # features: remembered per HAR input row (the same arithmetic, done once)
        self._har_log_vol = lru_cache(maxsize=64)(self._har_log_vol_of)

    # the centre -------------------------------------------------------------------------
    def log_vol(self, daily: Mapping[str, Any]) -> float:
        """m = forecast E[ln RV5] (annualised); NaN when an input is missing."""
        if self.head is not None:
            return float(self.head(daily))
        return self._har_log_vol(tuple(daily.get(k) for k in HAR_INPUTS))

    def _har_log_vol_of(self, inputs: tuple[Any, ...]) -> float:
        if self._coef is None:
            raise ValueError("volatility core has no HAR coefficients")
        return float(har_design(dict(zip(HAR_INPUTS, inputs, strict=True)))[0] @ self._coef)

    def sigma(self, daily: Mapping[str, Any]) -> float:
        """exp(m): the forecast annualised volatility scale."""
        m = self.log_vol(daily)
        if not math.isfinite(m):
            raise ValueError("volatility forecast needs vol_har_d/w/m and vix")
        return math.exp(m)

    def _table(self, table: str, key: str) -> list[float]:
        rows = self.params[table]
        return rows[key] if key in rows else rows[POOLED]

    # signals ----------------------------------------------------------------------------
    def trap_probability(self, daily: Mapping[str, Any]) -> float:
        """P(RV over the next 5 sessions > VIX/100)."""
        vix = _num(daily.get("vix"))
        m = self.log_vol(daily)
        if not (math.isfinite(m) and vix > 0):
            raise ValueError("trap needs vix and the HAR inputs")
        a, b = self.params["trap_link"]
        return 1.0 / (1.0 + math.exp(-(a + b * (m - math.log(vix / 100)))))

    def stress_probabilities(
        self, daily: Mapping[str, Any], days_to_expiry: float
    ) -> dict[str, float]:
        """P(RV to expiry in the training terciles' low / medium / high class)."""
        m = self.log_vol(daily)
        if not math.isfinite(m):
            raise ValueError("stress needs the HAR inputs")
        q = self._table("expiry_residuals", dte_bucket(days_to_expiry))
        t1, t2 = (math.log(t) - m for t in self.params["stress_terciles_rv"])
        low = 1 - float(survival(t1, q))
        high = float(survival(t2, q))
        return {"low": low, "medium": max(0.0, 1 - low - high), "high": high}

    def _u_table(self, vix: float, days_to_expiry: float) -> list[float]:
        rows = self.params["move_u"]
        regime = vix_regime(vix if vix > 0 else None)
        for key in (f"{regime}|{dte_bucket(days_to_expiry)}", regime):
            if key in rows:
                return rows[key]
        return rows[POOLED]

    def move_scale(
        self, daily: Mapping[str, Any], sessions_to_expiry: float, days_to_expiry: float
    ) -> float:
        """The log-return scale to expiry, w_core * exp(m) * sqrt(n/252) + w_vix * VIX/100 *
        sqrt(T/365) (n sessions, T calendar days, each at least one session minute)."""
        vix = _num(daily.get("vix"))
        if not vix > 0:
            raise ValueError("the move scale needs vix")
        blend = self.params["move_blend"]
        scale = blend_scale(blend, self.sigma(daily), vix, sessions_to_expiry, days_to_expiry)
        if not scale > 0:
            raise ValueError(f"move scale {scale:.4g} is not positive")
        return scale

    def range_bounds(
        self,
        daily: Mapping[str, Any],
        spot: float,
        sessions_to_expiry: float,
        days_to_expiry: float,
        coverage: float,
    ) -> tuple[float, float]:
        """(lower, upper): the (1-c)/2 and (1+c)/2 quantiles of the expiry close."""
        scale = self.move_scale(daily, sessions_to_expiry, days_to_expiry)
        q = self._u_table(_num(daily.get("vix")), days_to_expiry)
        tail = (1 - coverage) / 2
        return spot * math.exp(quantile(tail, q) * scale), spot * math.exp(
            quantile(1 - tail, q) * scale
        )

    def breach_probability(
        self,
        daily: Mapping[str, Any],
        spot: float,
        strike: float,
        sessions_to_expiry: float,
        days_to_expiry: float,
    ) -> float:
        """P(expiry close beyond ``strike``: above it for a strike above spot, else below)."""
        scale = self.move_scale(daily, sessions_to_expiry, days_to_expiry)
        q = self._u_table(_num(daily.get("vix")), days_to_expiry)
        x = math.log(strike / spot) / scale
        p_above = float(survival(x, q))
        return p_above if strike > spot else 1 - p_above

    def breach_probabilities(
        self,
        daily: Mapping[str, Any],
        spot: float,
        strikes: Sequence[float],
        sessions_to_expiry: float,
        days_to_expiry: float,
    ) -> list[float]:
        """``breach_probability`` of each strike (one scale and table for all of them)."""
        scale = self.move_scale(daily, sessions_to_expiry, days_to_expiry)
        q = self._u_table(_num(daily.get("vix")), days_to_expiry)
        x = np.array([math.log(strike / spot) / scale for strike in strikes], dtype=float)
        p_above = survival(x, q).tolist()
        return [p if k > spot else 1 - p for k, p in zip(strikes, p_above, strict=True)]

    def expected_abs_move(
        self, daily: Mapping[str, Any], sessions_to_expiry: float, days_to_expiry: float
    ) -> float:
        """E|ln(C_expiry/C_t)| = scale * mean |u| of the same calibration sample."""
        regime = vix_regime(_num(daily.get("vix")) if _num(daily.get("vix")) > 0 else None)
        rows = self.params["move_abs_u"]
        key = next(
            (k for k in (f"{regime}|{dte_bucket(days_to_expiry)}", regime) if k in rows), POOLED
        )
        return self.move_scale(daily, sessions_to_expiry, days_to_expiry) * float(rows[key])
