"""Scores of the volatility signals on the chain sessions, and their comparison with intervals
that resample whole expiries (the sessions that target one expiry share its settlement).

Per signal, a table with one column per forecast (baselines, the signal as shipped today, the
core, each variant): a loss per session (lower is better) for move, safe range, breach curve
and trap; a score per session for stress, whose skill is Spearman's rho with the next 5
sessions' realised vol.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import rankdata

DRAWS = 1000
RANGE_TAIL_WEIGHT = 2 / (1 - 0.9)  # the interval score of a central 90 % interval
LOSS_SIGNALS = ("move", "safe_range", "breach", "trap")
SIGNALS = (*LOSS_SIGNALS, "stress")


def interval_score(lo: np.ndarray, hi: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Width + 20 x the distance outside, all in log units (a proper score of a 90 % range)."""
    outside = np.maximum(lo - r, 0) + np.maximum(r - hi, 0)
    return hi - lo + RANGE_TAIL_WEIGHT * outside


class Resampler:
    """Bootstrap draws of whole expiries: ``counts[d, e]`` is how often draw ``d`` picked
    expiry ``e``."""

    def __init__(self, expiries: Sequence[object] | np.ndarray, draws: int = DRAWS) -> None:
        self.codes, uniques = pd.factorize(np.asarray(expiries))
        self.expiries = len(uniques)
        picks = np.random.default_rng(0).integers(0, self.expiries, (draws, self.expiries))
        self.counts = np.zeros((draws, self.expiries))
        np.add.at(self.counts, (np.arange(draws)[:, None], picks), 1)

    def totals(self, values: np.ndarray) -> tuple[float, np.ndarray]:
        """(the sum of ``values``, its sum in every draw)."""
        per_expiry = np.bincount(self.codes, weights=values, minlength=self.expiries)
        return float(per_expiry.sum()), self.counts @ per_expiry

    def spearman(self, score: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        """(rho on the rows, rho in every draw): each draw is the sample of its picked
        expiries' rows, repeated as often as picked, with ties at their average rank."""
        weights = self.counts[:, self.codes]
        ones = np.ones((1, len(score)))
        point = _weighted_rho(score, target, ones)[0]
        return float(point), _weighted_rho(score, target, weights)


def _weighted_ranks(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Average ranks of ``x`` in samples holding row i ``weights[d, i]`` times."""
    order = np.argsort(x, kind="stable")
    ordered = x[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    per_value = np.add.reduceat(weights[:, order], starts, axis=1)
    group = np.unique(x, return_inverse=True)[1]
    below = np.cumsum(per_value, axis=1) - per_value
    return (below + (per_value + 1) / 2)[:, group]


def _weighted_rho(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Spearman's rho per row of ``weights``: Pearson's on the weighted average ranks."""
    rx, ry = _weighted_ranks(x, weights), _weighted_ranks(y, weights)
    total = weights.sum(axis=1, keepdims=True)
    dx = rx - (weights * rx).sum(axis=1, keepdims=True) / total
    dy = ry - (weights * ry).sum(axis=1, keepdims=True) / total
    cov = (weights * dx * dy).sum(axis=1)
    return cov / np.sqrt((weights * dx**2).sum(axis=1) * (weights * dy**2).sum(axis=1))


@dataclass(frozen=True)
class Comparison:
    improvement: float
    interval: tuple[float, float]

    def above_zero(self) -> bool:
        return self.interval[0] > 0

    def to_dict(self) -> dict[str, object]:
        return {
            "improvement": round(self.improvement, 5),
            "interval": [round(x, 5) for x in self.interval],
        }


def _bounds(draws: np.ndarray) -> tuple[float, float]:
    lo, hi = np.nanquantile(draws, [0.05, 0.95])
    return float(lo), float(hi)


def compare(
    table: pd.DataFrame,
    rows: np.ndarray,
    forecast: str,
    references: Sequence[str],
    signal: str,
    target: np.ndarray | None = None,
) -> Comparison:
    """Improvement of ``forecast`` over the better of ``references`` on ``rows`` (a boolean
    mask), in every draw the better on that draw: 1 - loss / reference loss, or for stress
    the difference of rho with ``target``."""
    g = table[rows]
    resample = Resampler(g["expiry"].to_numpy())
    if signal == "stress":
        assert target is not None
        y = target[rows]
        point, draws = resample.spearman(g[forecast].to_numpy(float), y)
        refs = [resample.spearman(g[r].to_numpy(float), y) for r in references]
        best = max(p for p, _ in refs)
        best_draws = np.max([d for _, d in refs], axis=0)
        return Comparison(point - best, _bounds(draws - best_draws))
    total, draws = resample.totals(g[forecast].to_numpy(float))
    refs = [resample.totals(g[r].to_numpy(float)) for r in references]
    best = min(p for p, _ in refs)
    best_draws = np.min([d for _, d in refs], axis=0)
    return Comparison(1 - total / best, _bounds(1 - draws / best_draws))


def ranks_within(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Each of ``rows``' values as its rank share among them (NaN elsewhere): scores on
    different scales made comparable for a series that switches between them."""
    out = np.full(len(values), math.nan)
    out[rows] = rankdata(values[rows]) / rows.sum()
    return out
