"""The chain-input corrections of the volatility core (docs/MODELS.md, "Volatility chain gate"),
each fitted walk-forward on the chain sessions alone: refitted every ``REFIT_EVERY`` sessions on
the rows dated at least ``PURGE_DAYS`` calendar days before the refit (their expiry and their
5-session label have settled), first forecast once ``MIN_TRAINING`` such rows exist.

- Scale variants (move, safe range, breach curve): a move scale s per session, fitted by least
  squares on |ln(C_expiry/C_t)|, and the pooled quantiles of u = ln(C_expiry/C_t) / s on the
  training rows: the range is s times u's (1 ∓ c)/2 quantiles, the breach curve u's survival
  function (``shared.models.volatility``, the core's own), the move s·mean|u|.
- Trap variants: a logistic regression on the event RV5 > VIX.
- Stress variants: least squares of ln RV5; the score is the fit (only its ranking is scored).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import least_squares
from sklearn.linear_model import LogisticRegression

from services.trainer.vol_chain_data import CHAIN_INPUTS, MARKET_INPUTS
from shared.models.volatility import QUANTILE_LEVELS, quantile, survival

REFIT_EVERY = 21
MIN_TRAINING = 150
PURGE_DAYS = 10
COVERAGE = 0.9
MIN_SCALE = 1e-4  # a fitted scale below one basis point of log move is clipped to it

Predictor = Callable[[pd.DataFrame], np.ndarray]


@dataclass(frozen=True)
class ScaleVariant:
    """s = (legs · w) · exp(z · β), z the standardised ``multipliers``; ``fixed`` = one leg
    with weight 1 and no fit (the straddle band)."""

    legs: tuple[str, ...]
    multipliers: tuple[str, ...] = ()
    fixed: bool = False

    target = "r"

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.legs, *self.multipliers)

    def fit(self, past: pd.DataFrame) -> Predictor:
        legs = past[list(self.legs)].to_numpy(float)
        move = np.abs(past["r"].to_numpy(float))
        if self.fixed:
            return lambda rows: rows[self.legs[0]].to_numpy(float)
        w = np.linalg.lstsq(legs, move, rcond=None)[0]
        if not self.multipliers:
            return lambda rows: np.maximum(rows[list(self.legs)].to_numpy(float) @ w, MIN_SCALE)
        z = past[list(self.multipliers)].to_numpy(float)
        mean, std = z.mean(0), z.std(0)
        std[std == 0] = 1.0
        k = len(w)

        def residual(theta: np.ndarray) -> np.ndarray:
            return (legs @ theta[:k]) * np.exp((z - mean) / std @ theta[k:]) - move

        theta = least_squares(residual, np.r_[w, np.zeros(z.shape[1])]).x

        def predict(rows: pd.DataFrame) -> np.ndarray:
            zr = (rows[list(self.multipliers)].to_numpy(float) - mean) / std
            s = rows[list(self.legs)].to_numpy(float) @ theta[:k] * np.exp(zr @ theta[k:])
            return np.maximum(s, MIN_SCALE)

        return predict


@dataclass(frozen=True)
class TrapVariant:
    inputs: tuple[str, ...]
    target = "trap_actual"

    @property
    def columns(self) -> tuple[str, ...]:
        return self.inputs

    def fit(self, past: pd.DataFrame) -> Predictor:
        model = LogisticRegression(C=1e6, max_iter=1000)
        model.fit(past[list(self.inputs)].to_numpy(float), past["trap_actual"].to_numpy(int))
        return lambda rows: model.predict_proba(rows[list(self.inputs)].to_numpy(float))[:, 1]


@dataclass(frozen=True)
class StressVariant:
    inputs: tuple[str, ...]  # enter as logs
    target = "rv_next5"

    @property
    def columns(self) -> tuple[str, ...]:
        return self.inputs

    def _design(self, rows: pd.DataFrame) -> np.ndarray:
        x = np.log(rows[list(self.inputs)].to_numpy(float))
        return np.column_stack([np.ones(len(rows)), x])

    def fit(self, past: pd.DataFrame) -> Predictor:
        y = np.log(past["rv_next5"].to_numpy(float))
        coef = np.linalg.lstsq(self._design(past), y, rcond=None)[0]
        return lambda rows: self._design(rows) @ coef


CORE_LEGS = ("predicted_move", "vix_move")
SCALE_VARIANTS: dict[str, ScaleVariant] = {
    "D0": ScaleVariant(CORE_LEGS),
    "D1": ScaleVariant((*CORE_LEGS, "straddle_move")),
    "D2": ScaleVariant((*CORE_LEGS, "straddle_move"), CHAIN_INPUTS),
    "D3": ScaleVariant((*CORE_LEGS, "straddle_move"), (*CHAIN_INPUTS, *MARKET_INPUTS)),
}
STRADDLE_BAND = ScaleVariant(("straddle_sigma",), fixed=True)
TRAP_VARIANTS: dict[str, TrapVariant] = {
    "T0": TrapVariant(("core_logit",)),
    "T1": TrapVariant(("core_logit", "term_gap")),
}
TRAP_STRADDLE = TrapVariant(("term_gap",))
STRESS_VARIANTS: dict[str, StressVariant] = {
    "S0": StressVariant(("vol_forecast", "vix")),
    "S1": StressVariant(("vol_forecast", "vix", "straddle_iv")),
}
CONTROLS = {"D1": "D0", "D2": "D1", "D3": "D2", "T1": "T0", "S1": "S0"}  # what each must beat
CANDIDATES = tuple(CONTROLS)


def training_rows(g: pd.DataFrame, start: int) -> np.ndarray:
    """Rows dated at least PURGE_DAYS calendar days before row ``start``'s date."""
    return (g["date"] < g["date"].iloc[start] - pd.Timedelta(days=PURGE_DAYS)).to_numpy()


def refit_starts(n: int) -> range:
    return range(0, n, REFIT_EVERY)


@dataclass
class Fitted:
    """A variant's walk-forward forecasts: per row the forecast (NaN where an input is missing
    or fewer than MIN_TRAINING complete training rows exist) and the refit it came from
    (-1: none); per refit, for a scale variant, the training rows' u quantiles and mean |u|."""

    forecast: np.ndarray
    fold: np.ndarray
    quantiles: dict[int, list[float]]
    mean_abs_u: dict[int, float]


def walk_forward(g: pd.DataFrame, variant: ScaleVariant | TrapVariant | StressVariant) -> Fitted:
    has_inputs = g[list(variant.columns)].notna().all(axis=1).to_numpy()
    complete = has_inputs & g[variant.target].notna().to_numpy()
    out = Fitted(np.full(len(g), np.nan), np.full(len(g), -1), {}, {})
    for start in refit_starts(len(g)):
        past = training_rows(g, start) & complete
        if past.sum() < MIN_TRAINING:
            continue
        block = np.zeros(len(g), dtype=bool)
        block[start : start + REFIT_EVERY] = True
        block &= has_inputs
        train = g[past]
        predict = variant.fit(train)
        out.forecast[block] = predict(g[block])
        out.fold[block] = start
        if isinstance(variant, ScaleVariant):
            u = train["r"].to_numpy(float) / predict(train)
            out.quantiles[start] = np.quantile(u, QUANTILE_LEVELS).tolist()
            out.mean_abs_u[start] = float(np.mean(np.abs(u)))
    return out


def scale_signals(fitted: Fitted) -> pd.DataFrame:
    """A scale variant's move and range bounds (log, relative to spot) per row."""
    s, fold = fitted.forecast, fitted.fold
    tail = (1 - COVERAGE) / 2
    out = pd.DataFrame({"scale": s, "move": np.nan, "lo": np.nan, "hi": np.nan, "fold": fold})
    for start, q in fitted.quantiles.items():
        rows = fold == start
        out.loc[rows, "move"] = s[rows] * fitted.mean_abs_u[start]
        out.loc[rows, "lo"] = s[rows] * quantile(tail, q)
        out.loc[rows, "hi"] = s[rows] * quantile(1 - tail, q)
    return out


def breach_probabilities(strikes: pd.DataFrame, fitted: Fitted) -> np.ndarray:
    """P(expiry close beyond each strike row) under a scale variant: ``strikes`` has ``row``
    (the session's row in the forecasts) and ``log_strike``."""
    pos = strikes["row"].to_numpy()
    s, fold = fitted.forecast[pos], fitted.fold[pos]
    k = strikes["log_strike"].to_numpy(float)
    out = np.full(len(strikes), np.nan)
    for start, q in fitted.quantiles.items():
        sel = fold == start
        above = survival(k[sel] / s[sel], q)
        out[sel] = np.where(k[sel] > 0, above, 1 - above)
    return out
