"""Measuring the ``stats`` artifact: safe-range z per VIX regime (walk-forward, each tail
calibrated separately), its out-of-sample hit rate, spike rates and gamma windows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from services.trainer.artifacts import TrainedModel
from services.trainer.data import TrainingData
from shared.models import labels
from shared.models.api import vix_regime
from shared.models.seller import MIN_DAYS_TO_EXPIRY
from shared.models.stats import POOLED

REGIMES = ("LOW", "NORMAL", "HIGH")
RECALIBRATE_EVERY_SESSIONS = 21
MIN_CALIBRATION_SAMPLES = 150
SPIKE_WINDOW_SESSIONS = 756  # the "recent window": three years of sessions
GAMMA_BLOCK_MINUTES = 30
MIN_BARS_PER_SESSION = 300


def _span(index: pd.Index) -> str:
    return f"{index[0]:%Y-%m-%d}..{index[-1]:%Y-%m-%d}" if len(index) else ""


def safe_range_samples(data: TrainingData) -> pd.DataFrame:
    """Per session with an expiry ahead: the expiry move in implied-sigma units
    u = ln(C_expiry/C_t) / (σ·√(T/365)), σ = VIX/100, its regime and its expiry row."""
    frame = data.frame
    pos = labels.expiry_positions(frame.index)
    move = labels.expiry_log_return(frame["close"]).to_numpy()
    days = np.maximum(data.features["days_to_expiry"].to_numpy(float), MIN_DAYS_TO_EXPIRY)
    u = move / (frame["vix"].to_numpy() / 100 * np.sqrt(days / 365))
    out = pd.DataFrame(
        {
            "u": u,
            "regime": [vix_regime(v if np.isfinite(v) else None) for v in frame["vix"]],
            "expiry_row": pos,
            "row": np.arange(len(frame)),
        },
        index=frame.index,
    )
    return out[(out["expiry_row"] > out["row"]) & np.isfinite(out["u"])]


def z_bounds(u: np.ndarray, coverage: float) -> tuple[float, float]:
    """(z_lower, z_upper): each tail gets (1 - coverage) / 2 of the misses."""
    tail = (1 - coverage) / 2
    return float(-np.quantile(u, tail)), float(np.quantile(u, 1 - tail))


def walk_forward_coverage(samples: pd.DataFrame, coverage: float) -> pd.DataFrame:
    """For each sample: the z its regime had from samples settled before it (recalibrated
    every 21 sessions), and whether the expiry close stayed inside."""
    rows = samples["row"].to_numpy()
    settled_at = samples["expiry_row"].to_numpy()
    results = []
    for start in range(rows.min(), rows.max() + 1, RECALIBRATE_EVERY_SESSIONS):
        block = samples[(rows >= start) & (rows < start + RECALIBRATE_EVERY_SESSIONS)]
        known = samples[settled_at < start]
        for regime, group in block.groupby("regime"):
            past = known[known["regime"] == regime]
            if len(past) < MIN_CALIBRATION_SAMPLES:
                continue
            z_lo, z_hi = z_bounds(past["u"].to_numpy(), coverage)
            inside = (group["u"] >= -z_lo) & (group["u"] <= z_hi)
            results.append(
                pd.DataFrame(
                    {
                        "regime": regime,
                        "z_lower": z_lo,
                        "z_upper": z_hi,
                        "u": group["u"],
                        "inside": inside,
                    }
                )
            )
    return (
        pd.concat(results).sort_index()
        if results
        else pd.DataFrame(columns=["regime", "z_lower", "z_upper", "u", "inside"])
    )


def spike_rates(data: TrainingData) -> dict[str, dict[str, Any]]:
    spike, _ = labels.next_session_spike(data.frame["close"], data.features["sigma20_daily"])
    frame = pd.DataFrame(
        {
            "spike": spike,
            "regime": [vix_regime(v if np.isfinite(v) else None) for v in data.frame["vix"]],
        }
    ).dropna()
    recent = frame.tail(SPIKE_WINDOW_SESSIONS)
    out = {POOLED: _rate(recent["spike"])}
    for regime in REGIMES:
        sub = recent[recent["regime"] == regime]
        if sub.empty:  # regime absent lately: measure it over the whole history, said so
            sub = frame[frame["regime"] == regime]
        if not sub.empty:
            out[regime] = _rate(sub["spike"])
    return out


def _rate(flags: pd.Series) -> dict[str, Any]:
    return {"value": float(flags.mean()), "window": _span(flags.index), "samples": len(flags)}


def gamma_windows(minutes: pd.DataFrame | None) -> list[dict[str, Any]]:
    """Per 30-minute block of the regular session: share of sessions in which that block
    held the session's largest absolute open-to-close log move."""
    if minutes is None or minutes.empty:
        return []
    from shared.market.calendar import SESSION_MINUTES, minute_of_session

    m = minutes.assign(minute=[minute_of_session(int(t)) for t in minutes["open_time"]])
    m = m[(m["minute"] >= 0) & (m["minute"] < SESSION_MINUTES)]
    m = m[m.groupby("date")["minute"].transform("size") >= MIN_BARS_PER_SESSION]
    m = m.assign(block=m["minute"] // GAMMA_BLOCK_MINUTES)
    grouped = m.groupby(["date", "block"])
    moves = np.log(grouped["close"].last() / grouped["open"].first()).abs().unstack()
    winners = moves.idxmax(axis=1)
    share = winners.value_counts(normalize=True)
    window = _span(moves.index)
    out = []
    for block in range(int(np.ceil(SESSION_MINUTES / GAMMA_BLOCK_MINUTES))):
        start = 9 * 60 + 15 + block * GAMMA_BLOCK_MINUTES
        end = min(start + GAMMA_BLOCK_MINUTES, 9 * 60 + 15 + SESSION_MINUTES)
        out.append(
            {
                "block": f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}",
                "score": float(share.get(block, 0.0)),
                "window": window,
                "samples": len(moves),
            }
        )
    return out


def train_stats(data: TrainingData, coverage_target: float) -> TrainedModel:
    samples = safe_range_samples(data)
    wf = walk_forward_coverage(samples, coverage_target)
    safe_range, hit_rate = {}, {}
    for regime in (*REGIMES, POOLED):
        sub = samples if regime == POOLED else samples[samples["regime"] == regime]
        if len(sub) < MIN_CALIBRATION_SAMPLES:
            continue
        z_lo, z_hi = z_bounds(sub["u"].to_numpy(), coverage_target)
        safe_range[regime] = {
            "z_lower": z_lo,
            "z_upper": z_hi,
            "samples": len(sub),
            "window": _span(sub.index),
        }
        oos = wf if regime == POOLED else wf[wf["regime"] == regime]
        if len(oos):
            hit_rate[regime] = {
                "value": float(oos["inside"].mean()),
                "window": _span(oos.index),
                "samples": len(oos),
                "below_share": float((oos["u"] < -oos["z_lower"]).mean()),
                "above_share": float((oos["u"] > oos["z_upper"]).mean()),
            }
    params = {
        "coverage_target": coverage_target,
        "safe_range": safe_range,
        "hit_rate": hit_rate,
        "spike_rate": spike_rates(data),
        "gamma_windows": gamma_windows(data.minutes),
        "spike_window_sessions": SPIKE_WINDOW_SESSIONS,
    }
    return TrainedModel(
        name="stats",
        feature_sets=("daily",),
        params=params,
        metrics={"hit_rate": hit_rate, "safe_range": safe_range},
        training_window={"start": data.start, "end": data.end},
    )
