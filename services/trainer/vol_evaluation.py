"""Scoring the volatility signals of a walk-forward run beside their strongest simple
baselines, overall, per VIX regime and per days-to-expiry bucket, against the issue-9 floors."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.metrics import mean_absolute_error, roc_auc_score

from services.trainer import metrics as m
from shared.features import volatility as vol
from shared.market.calendar import TRADING_DAYS_PER_YEAR
from shared.models import volatility
from shared.models.seller import SIGNALS

BREACH_BIN_MIN = 100
BREACH_BIN_TOLERANCE = 0.02


def dte_bucket(days: pd.Series) -> pd.Series:
    """The model's days-to-expiry bucket of every row."""
    return days.map(volatility.dte_bucket)


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    ok = np.isfinite(score)
    return float(roc_auc_score(y[ok], score[ok])) if len(np.unique(y[ok])) == 2 else math.nan


def splits(g: pd.DataFrame, score: Callable[[pd.DataFrame], dict[str, Any]]) -> dict[str, Any]:
    """``score`` per VIX regime and per days-to-expiry bucket (diagnostics beside a pooled
    floor, or the groups a per-group floor is checked in)."""
    return {
        "by_regime": {str(r): score(x) for r, x in g.groupby("regime")},
        "by_dte": {str(k): score(x) for k, x in g.groupby(dte_bucket(g["days_to_expiry"]))},
    }


def _trap_scores(g: pd.DataFrame) -> dict[str, Any]:
    """The trap forecast against the training base rate, and the ranking baselines' AUCs."""
    y, p = g["trap_actual"].to_numpy(), g["trap_probability"].to_numpy()
    report = m.binary_report(p, y, g["trap_base_rate"].to_numpy())
    return {
        **report,
        "auc": _auc(y, p),
        "auc_sigma20_over_vix": _auc(y, (g["sigma20"] / g["vix"]).to_numpy()),
        "auc_vix_level": _auc(y, g["vix"].to_numpy()),
    }


def trap(s: pd.DataFrame) -> dict[str, Any]:
    g = s.dropna(subset=["trap_actual", "trap_probability"])
    out = _trap_scores(g)
    bins = m.reliability(g["trap_probability"].to_numpy(), g["trap_actual"].to_numpy())
    observed = [b["observed"] for b in bins if b["count"] >= 30]
    return {
        **out,
        "reliability": bins,
        "reliability_monotone_n30": bool(np.all(np.diff(observed) >= 0)),
        **splits(g, _trap_scores),
        "floor_auc_068": out["samples"] > 0 and out["auc"] >= 0.68,
        "floor_brier_skill_006": out["brier_skill"] >= 0.06,
    }


def _stress_scores(g: pd.DataFrame) -> dict[str, Any]:
    return {
        "spearman": float(spearmanr(g["stress_score"], g["rv_next5"])[0]),
        "spearman_vix": float(spearmanr(g["vix"], g["rv_next5"])[0]),
        "samples": len(g),
    }


def stress(s: pd.DataFrame) -> dict[str, Any]:
    g = s.dropna(subset=["rv_next5", "stress_score"])
    pooled = _stress_scores(g)
    return {
        "spearman_rv5": pooled["spearman"],
        "spearman_rv5_vix_level": pooled["spearman_vix"],
        "spearman_rv5_regime_climatology": float(
            spearmanr(g["stress_score_baseline"], g["rv_next5"])[0]
        ),
        "samples": len(g),
        **splits(g, _stress_scores),
        "floor_beats_vix": pooled["spearman"] > pooled["spearman_vix"],
    }


def _mae(g: pd.DataFrame) -> dict[str, Any]:
    implied = g["implied_move"] * math.sqrt(2 / math.pi)
    mae = float(mean_absolute_error(g["actual_move"], g["predicted_move"]))
    mae_vix = float(mean_absolute_error(g["actual_move"], implied))
    return {
        "samples": len(g),
        "mae_model": mae,
        "mae_vix_implied": mae_vix,
        "reduction": 1 - mae / mae_vix,
    }


def move(b: pd.DataFrame) -> dict[str, Any]:
    g = b.dropna(subset=["actual_move", "implied_move", "predicted_move"])
    out = {**_mae(g), **splits(g, _mae)}
    worst = min(x["reduction"] for x in (out, *out["by_regime"].values()))
    out["floor_005_every_regime"] = worst >= 0.05
    return out


def cluster_se(x: pd.Series, clusters: pd.Series) -> float:
    """Standard error of the mean of ``x`` with rows of one cluster (sessions targeting the
    same expiry share its settlement) summed before squaring: the sampling noise of a
    coverage rate, which counting each session as independent would understate."""
    if len(x) < 2:
        return math.nan
    sums = (x - x.mean()).groupby(clusters.to_numpy()).sum()
    return float(np.sqrt((sums**2).sum()) / len(x))


def same_coverage_width(g: pd.DataFrame, scale: pd.Series, coverage: float) -> float:
    """Mean log width of the band ``spot·exp(q·scale)`` whose quantiles q of the scaled move
    give ``coverage`` on this same sample: a baseline band at the model's realised coverage
    (its best case)."""
    u = np.log(g["expiry_close"] / g["spot"]) / scale
    q = (1 - coverage) / 2, (1 + coverage) / 2
    lo, hi = np.nanquantile(u, q) if len(g) else (np.nan, np.nan)
    return float(((hi - lo) * scale).mean())


def _coverage(g: pd.DataFrame) -> dict[str, Any]:
    spot, settle = g["spot"], g["expiry_close"]
    width = np.log(g["safe_upper"] / g["safe_lower"])
    # the VIX band at the model's realised coverage: VIX-scaled moves' quantiles, same sample
    scale = np.log(g["vix_upper"] / spot).where(lambda x: x > 0)
    cov = float(g["inside"].mean())
    return {
        "samples": len(g),
        "coverage": cov,
        "coverage_se_by_expiry": cluster_se(g["inside"], g["expiry"]),
        "expiries": int(g["expiry"].nunique()),
        "below": float((settle < g["safe_lower"]).mean()),
        "above": float((settle > g["safe_upper"]).mean()),
        "mean_width_log": float(width.mean()),
        "vix_band_calibrated_coverage": float(g["inside_vix_band"].mean()),
        "vix_band_calibrated_width_log": float(np.log(g["vix_upper"] / g["vix_lower"]).mean()),
        "vix_band_same_coverage_width_log": same_coverage_width(g, scale, cov),
    }


def safe_range(s: pd.DataFrame) -> dict[str, Any]:
    g = s.dropna(subset=["inside"])
    out = {**_coverage(g), **splits(g, _coverage)}
    groups = (out, *out["by_regime"].values(), *out["by_dte"].values())
    out["floor_coverage_088_092_everywhere"] = all(0.88 <= x["coverage"] <= 0.92 for x in groups)
    out["floor_width_vs_vix_band"] = (
        out["mean_width_log"] <= out["vix_band_same_coverage_width_log"]
    )
    return out


def _breach_scores(g: pd.DataFrame) -> dict[str, Any]:
    y, p, p_ln = (g[c].to_numpy() for c in ("breached", "probability", "probability_lognormal"))
    brier, brier_ln = float(np.mean((p - y) ** 2)), float(np.mean((p_ln - y) ** 2))
    return {
        "samples": len(g),
        "brier": brier,
        "brier_lognormal": brier_ln,
        "reduction_vs_lognormal": 1 - brier / brier_ln,
    }


def breach(br: pd.DataFrame) -> dict[str, Any]:
    g = br.dropna(subset=["breached", "probability", "probability_lognormal"])
    y, p, p_ln = (g[c].to_numpy() for c in ("breached", "probability", "probability_lognormal"))
    out = _breach_scores(g)
    bins = m.reliability(p, y)
    big = [b for b in bins if b["count"] >= BREACH_BIN_MIN]
    return {
        **out,
        "reliability": bins,
        "reliability_lognormal": m.reliability(p_ln, y),
        **splits(g, _breach_scores),
        "floor_brier_003": out["reduction_vs_lognormal"] >= 0.03,
        "floor_bins_within_002": all(
            abs(b["observed"] - b["forecast"]) <= BREACH_BIN_TOLERANCE for b in big
        ),
    }


def summarise_volatility(
    tables: dict[str, pd.DataFrame], rv_minute: pd.Series | None = None
) -> dict[str, Any]:
    s = tables["seller"]
    live = {k: s[f"live_{k}"].value_counts().to_dict() for k in SIGNALS if f"live_{k}" in s}
    return {
        "trap": trap(s),
        "stress": stress(s),
        "move_to_expiry": move(tables["buyer"]),
        "safe_range": safe_range(s),
        "breach": breach(tables["breach"]),
        "live_sessions": live,
        "shipped": shipped(tables),
        "minute_rv_target": minute_target(s, rv_minute) if rv_minute is not None else None,
    }


def minute_rv5(minutes: pd.DataFrame, frame: pd.DataFrame) -> pd.Series:
    """Annualised realised vol of sessions t+1..t+5 from 1-minute bars (sum of squared
    1-minute log returns within each session, plus the squared overnight gap from the daily
    bars), by session date t; NaN where a session of the five lacks minute bars."""
    minutes = minutes.sort_values("open_time")
    per_day = pd.Series(
        vol.minute_realised_variance(
            np.log(minutes["close"].to_numpy(float)), minutes["date"].to_numpy()
        ),
        index=pd.DatetimeIndex(minutes["date"].drop_duplicates()),
    )
    gap = np.log(frame["open"] / frame["close"].shift(1)) ** 2
    daily = (per_day + gap.reindex(per_day.index)).reindex(frame.index)
    ahead = daily.rolling(5).sum().shift(-5)
    return np.sqrt(ahead * TRADING_DAYS_PER_YEAR / 5)


def minute_target(s: pd.DataFrame, target: pd.Series) -> dict[str, Any]:
    """The 5-session forecast against the less noisy 1-minute realised vol, beside VIX."""
    g = s.assign(rv_minute=target.reindex(pd.DatetimeIndex(s["date"])).to_numpy())
    g = g.dropna(subset=["rv_minute", "vol_forecast"])
    if g.empty:
        return {"samples": 0}
    log_rv = np.log(g["rv_minute"])
    return {
        "samples": len(g),
        "window": f"{g['date'].min():%Y-%m-%d}..{g['date'].max():%Y-%m-%d}",
        "spearman_forecast": float(spearmanr(g["vol_forecast"], g["rv_minute"])[0]),
        "spearman_vix": float(spearmanr(g["vix"], g["rv_minute"])[0]),
        "spearman_sigma20": float(spearmanr(g["sigma20"], g["rv_minute"])[0]),
        "log_mse_forecast": float(np.mean((np.log(g["vol_forecast"]) - log_rv) ** 2)),
        "log_mse_vix": float(np.mean((np.log(g["vix"] / 100) - log_rv) ** 2)),
    }


def shipped(tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """The signals as the engine would have published them: the core where the fold's
    validation chose it (``live_*`` = model), its baseline elsewhere. The trap, the stress
    against RV to expiry and the breach curve at the engine's strikes are the live
    scorecard's figures (a replay served by the walk-forward registry reproduces them)."""
    s = tables["seller"]
    if "live_trap" not in s:
        return {}
    model = {k: s[f"live_{k}"] == "model" for k in SIGNALS}
    out: dict[str, Any] = {}
    g = s.assign(p=np.where(model["trap"], s["trap_probability"], s["trap_base_rate"]))
    g = g.dropna(subset=["trap_actual"])
    y = g["trap_actual"].to_numpy()
    report = m.binary_report(g["p"].to_numpy(), y, g["trap_base_rate"].to_numpy())
    out["trap"] = {
        "auc": _auc(y, g["p"].to_numpy()),
        "brier_skill": report["brier_skill"],
        "brier": report["brier"],
        "event_rate": report["observed_rate"],
        "samples": report["samples"],
    }
    if "rv_to_expiry" in s:  # the live scorecard's stress figure: against RV to the expiry
        st = s.assign(
            score=np.where(model["stress"], s["stress_score"], s["stress_score_baseline"])
        ).dropna(subset=["rv_to_expiry"])
        out["stress_spearman_rv_to_expiry"] = {
            "spearman": float(spearmanr(st["score"], st["rv_to_expiry"])[0]),
            "samples": len(st),
        }
    r = s.assign(
        inside_shipped=np.where(model["expiry_range"], s["inside"], s["inside_vix_band"]),
        bucket=dte_bucket(s["days_to_expiry"]),
    ).dropna(subset=["inside"])
    out["safe_range_coverage"] = {
        "ALL": float(r["inside_shipped"].mean()),
        **{k: float(x["inside_shipped"].mean()) for k, x in r.groupby("regime")},
        **{k: float(x["inside_shipped"].mean()) for k, x in r.groupby("bucket")},
    }
    b = tables["buyer"].merge(s[["date", "live_move"]], on="date")
    b = b.dropna(subset=["actual_move", "implied_move", "predicted_move"])
    implied = b["implied_move"] * math.sqrt(2 / math.pi)
    move = np.where(b["live_move"] == "model", b["predicted_move"], implied)
    out["move_mae_reduction"] = float(
        1 - np.mean(np.abs(move - b["actual_move"])) / np.mean(np.abs(implied - b["actual_move"]))
    )
    br = tables["breach"].merge(s[["date", "live_expiry_range"]], on="date")
    br = br.dropna(subset=["breached", "probability", "probability_lognormal"])
    p = np.where(br["live_expiry_range"] == "model", br["probability"], br["probability_lognormal"])
    ln = br["probability_lognormal"].to_numpy()
    y = br["breached"].to_numpy()
    out["breach_brier_reduction"] = float(1 - np.mean((p - y) ** 2) / np.mean((ln - y) ** 2))
    if "breach_engine_strikes" in tables:  # the strikes the engine publishes (and a replay's
        # live scorecard scores)
        e = tables["breach_engine_strikes"].dropna(subset=["breached"])
        out["breach_at_engine_strikes"] = {
            "strikes": len(e),
            "brier": float(np.mean((e["probability"] - e["breached"]) ** 2)),
            "brier_lognormal": float(np.mean((e["probability_lognormal"] - e["breached"]) ** 2)),
        }
    return out
