"""The walk-forward volatility forecasts scored where the option chain's daily history exists
(2023-08 onwards), beside the market's own priced move to the same expiry: the nearest weekly
ATM straddle (``shared.features.option_chain``) as well as India VIX. Intervals are 90 %
bootstrap intervals resampling whole expiries (the sessions that target one expiry share its
settlement). The chain's inputs as corrections of the core: ``vol_chain``.

Expiry days are left out: the history's straddle there is the expiring contract's, while the
forecasts target the next expiry.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import erfc
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from services.trainer import metrics as m
from services.trainer.vol_evaluation import dte_bucket, same_coverage_width
from shared.features.option_chain import SIGMA_PER_MEAN_ABS

TABLES = ("seller", "buyer", "breach")
DRAWS = 1000


def load_runs(folders: Sequence[Path], names: Sequence[str] = TABLES) -> dict[str, pd.DataFrame]:
    """The tables of several evaluation runs, each date's rows from the latest folder that
    has the date."""
    out = {}
    for name in names:
        frames = [pd.read_csv(f / f"{name}.csv", parse_dates=["date"]) for f in folders]
        rank = pd.concat([pd.Series(i, index=f.index) for i, f in enumerate(frames)])
        table = pd.concat(frames).assign(_run=rank.to_numpy())
        last = table.groupby("date")["_run"].transform("max")
        out[name] = table[table["_run"] == last].drop(columns="_run").reset_index(drop=True)
    return out


def load_chain(path: Path) -> pd.DataFrame:
    """The daily chain history on the days its expiry is the forecasts' (not expiry days)."""
    chain = pd.read_csv(path, parse_dates=["date"])
    chain = chain[chain["oc_is_expiry"] == 0].copy()
    chain["chain_expiry"] = chain["date"] + pd.to_timedelta(chain["oc_dte_actual"], unit="D")
    chain["straddle_move"] = chain["oc_straddle_pct"] / 100
    chain["straddle_sigma"] = chain["straddle_move"] * SIGMA_PER_MEAN_ABS
    chain["straddle_iv"] = chain["straddle_sigma"] / np.sqrt(chain["oc_dte_actual"] / 365)
    return chain[["date", "chain_expiry", "straddle_move", "straddle_sigma", "straddle_iv"]]


def with_chain(table: pd.DataFrame, chain: pd.DataFrame) -> pd.DataFrame:
    """``table``'s rows whose expiry is the chain history's, with the straddle columns."""
    g = table.merge(chain, on="date", how="inner")
    same = pd.to_datetime(g["expiry"]) == g["chain_expiry"]
    return g[same].sort_values("date").reset_index(drop=True)


def interval(
    g: pd.DataFrame, stat: Callable[[pd.DataFrame], float], by: str = "expiry"
) -> list[float]:
    """90 % bootstrap interval of ``stat``, resampling the groups of ``by`` (expiries unless
    told) with replacement."""
    rng = np.random.default_rng(0)
    rows = list(g.groupby(by).indices.values())
    draws = []
    for _ in range(DRAWS):
        pick = rng.integers(0, len(rows), len(rows))
        draws.append(stat(g.iloc[np.concatenate([rows[i] for i in pick])]))
    lo, hi = np.nanquantile(draws, [0.05, 0.95])
    return [round(float(lo), 4), round(float(hi), 4)]


def _mae(actual: pd.Series, forecast: pd.Series) -> float:
    return float(np.mean(np.abs(actual - forecast)))


def move(b: pd.DataFrame) -> dict[str, Any]:
    """Move to expiry: the core's and the shipped mean |log move| against the VIX-implied and
    the straddle-implied ones; the floor is 5 % below the better of the two."""
    b = b.assign(
        vix_move=b["implied_move"] * math.sqrt(2 / math.pi),
        shipped=np.where(
            b["live_move"] == "model",
            b["predicted_move"],
            b["implied_move"] * math.sqrt(2 / math.pi),
        ),
    )

    def reduction(g: pd.DataFrame, column: str = "predicted_move") -> float:
        better = min(
            _mae(g["actual_move"], g["vix_move"]), _mae(g["actual_move"], g["straddle_move"])
        )
        return 1 - _mae(g["actual_move"], g[column]) / better

    out: dict[str, Any] = {
        "samples": len(b),
        "mae_model": _mae(b["actual_move"], b["predicted_move"]),
        "mae_shipped": _mae(b["actual_move"], b["shipped"]),
        "mae_vix_implied": _mae(b["actual_move"], b["vix_move"]),
        "mae_straddle_implied": _mae(b["actual_move"], b["straddle_move"]),
        "reduction_vs_better_baseline": reduction(b),
        "reduction_interval": interval(b, reduction),
        "shipped_reduction_vs_better_baseline": reduction(b, "shipped"),
        "by_dte": {
            str(k): {"samples": len(x), "reduction_vs_better_baseline": reduction(x)}
            for k, x in b.groupby(dte_bucket(b["days_to_expiry"]))
        },
    }
    out["floor_005_below_better"] = out["reduction_vs_better_baseline"] >= 0.05
    return out


def _range_scores(g: pd.DataFrame, inside: str) -> dict[str, Any]:
    coverage = float(g[inside].mean())
    width = float(np.log(g["safe_upper"] / g["safe_lower"]).mean())
    vix = same_coverage_width(g, np.log(g["vix_upper"] / g["spot"]), coverage)
    straddle = same_coverage_width(g, g["straddle_sigma"], coverage)
    return {
        "samples": len(g),
        "coverage": coverage,
        "mean_width_log": width,
        "vix_band_same_coverage_width_log": vix,
        "straddle_band_same_coverage_width_log": straddle,
        "width_reduction_vs_better_band": 1 - width / min(vix, straddle),
    }


def safe_range(s: pd.DataFrame) -> dict[str, Any]:
    g = s.dropna(subset=["inside"]).assign(
        inside_shipped=lambda x: np.where(
            x["live_expiry_range"] == "model", x["inside"], x["inside_vix_band"]
        )
    )
    out = {
        **_range_scores(g, "inside"),
        "coverage_interval": interval(g, lambda x: float(x["inside"].mean())),
        "expiries": int(g["expiry"].nunique()),
        "shipped_coverage": float(g["inside_shipped"].mean()),
        "by_dte": {
            str(k): {"samples": len(x), "coverage": float(x["inside"].mean())}
            for k, x in g.groupby(dte_bucket(g["days_to_expiry"]))
        },
    }
    covered = [out["coverage"], *(x["coverage"] for x in out["by_dte"].values())]
    out["floor_coverage_088_092_everywhere"] = all(0.88 <= c <= 0.92 for c in covered)
    out["floor_width_005_below_both"] = out["width_reduction_vs_better_band"] >= 0.05
    return out


def breach(br: pd.DataFrame) -> dict[str, Any]:
    g = br.dropna(subset=["breached", "probability", "probability_lognormal"])
    distance = np.abs(np.log1p(np.where(g["side"] == "above", 1, -1) * g["strike_pct"] / 100))
    g = g.assign(probability_straddle=0.5 * erfc(distance / g["straddle_sigma"] / math.sqrt(2)))

    def brier(x: pd.DataFrame, column: str) -> float:
        return float(np.mean((x[column] - x["breached"]) ** 2))

    def reduction(x: pd.DataFrame) -> float:
        better = min(brier(x, "probability_lognormal"), brier(x, "probability_straddle"))
        return 1 - brier(x, "probability") / better

    out: dict[str, Any] = {
        "samples": len(g),
        "brier_model": brier(g, "probability"),
        "brier_vix_lognormal": brier(g, "probability_lognormal"),
        "brier_straddle_lognormal": brier(g, "probability_straddle"),
        "reduction_vs_better_baseline": reduction(g),
        "reduction_interval": interval(g, reduction),
    }
    out["floor_003_below_better"] = out["reduction_vs_better_baseline"] >= 0.03
    return out


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    return float(roc_auc_score(y, score)) if len(np.unique(y)) == 2 else math.nan


def trap(s: pd.DataFrame) -> dict[str, Any]:
    g = s.dropna(subset=["trap_actual", "trap_probability"])
    g = g.assign(
        term_gap=np.log(g["straddle_iv"] / (g["vix"] / 100)),
        shipped=np.where(g["live_trap"] == "model", g["trap_probability"], g["trap_base_rate"]),
    )
    y = g["trap_actual"].to_numpy()
    base = g["trap_base_rate"].to_numpy()
    out: dict[str, Any] = {
        "samples": len(g),
        "event_rate": float(y.mean()),
        "auc_model": _auc(y, g["trap_probability"].to_numpy()),
        "auc_interval": interval(
            g, lambda x: _auc(x["trap_actual"].to_numpy(), x["trap_probability"].to_numpy())
        ),
        "auc_shipped": _auc(y, g["shipped"].to_numpy()),
        "auc_straddle_iv_over_vix": _auc(y, g["term_gap"].to_numpy()),
        "auc_sigma20_over_vix": _auc(y, (g["sigma20"] / g["vix"]).to_numpy()),
        "auc_vix_level": _auc(y, g["vix"].to_numpy()),
        "brier_skill_model": m.binary_report(g["trap_probability"].to_numpy(), y, base)[
            "brier_skill"
        ],
        "brier_skill_shipped": m.binary_report(g["shipped"].to_numpy(), y, base)["brier_skill"],
    }
    out["floor_auc_075_skill_010"] = out["auc_model"] >= 0.75 and out["brier_skill_model"] >= 0.1
    return out


def stress(s: pd.DataFrame) -> dict[str, Any]:
    g = s.dropna(subset=["rv_next5", "stress_score"])

    def rho(column: str) -> float:
        return float(spearmanr(g[column], g["rv_next5"])[0])

    out = {
        "samples": len(g),
        "spearman_model": rho("stress_score"),
        "spearman_vix": rho("vix"),
        "spearman_sigma20": rho("sigma20"),
        "spearman_straddle_iv": rho("straddle_iv"),
    }
    out["floor_above_vix_and_sigma20"] = out["spearman_model"] > max(
        out["spearman_vix"], out["spearman_sigma20"]
    )
    return out


def run_chain_evaluation(folders: Sequence[Path], chain_csv: Path) -> dict[str, Any]:
    tables = load_runs(folders)
    chain = load_chain(chain_csv)
    seller = tables["seller"]
    buyer = tables["buyer"].dropna(subset=["actual_move", "implied_move", "predicted_move"])
    s = with_chain(seller, chain)
    b = with_chain(buyer.merge(seller[["date", "expiry", "live_move"]], on="date"), chain)
    br = with_chain(tables["breach"], chain)
    return {
        "window": f"{s['date'].min():%Y-%m-%d}..{s['date'].max():%Y-%m-%d}",
        "sessions": len(s),
        "note": "sessions with a chain history row for the forecasts' expiry (expiry days out)",
        "move_to_expiry": move(b),
        "safe_range": safe_range(s),
        "breach": breach(br),
        "trap": trap(s),
        "stress": stress(s),
    }
