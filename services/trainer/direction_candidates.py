"""Direction candidates walk-forward, beside climatology and the current model as shipped.

The folds are the current model's (read from the ``direction.csv`` of ``make evaluate`` and
``make evaluate-later``): each fold's candidate is trained on the sessions up to its training
end and forecasts that fold's sessions. Candidates: the logistic regression on the daily
features (``direction_logistic``: raw, calibrated "model", and "as shipped" after its own
gate), and the positioning corrections of it (``direction_positioning``), scored where their
inputs exist. Intervals: 90 %, resampling non-overlapping blocks of max(h, 10) sessions
(``chain_evaluation.interval``). The verdict applies the gate written in docs/MODELS.md
("Candidate gate") to the figures, nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from services.trainer import metrics as m
from services.trainer.chain_evaluation import interval, load_runs
from services.trainer.data import TrainingData, load_training_data
from services.trainer.direction import HORIZON_KEYS, targets
from services.trainer.direction_logistic import LogisticDirection, train_logistic_direction
from services.trainer.direction_positioning import (
    VARIANTS,
    chain_inputs,
    corrected,
    participant_inputs,
)
from shared.models import calibration
from shared.models.api import DIRECTION_CLASSES, HORIZONS

MIN_SESSIONS = 250
MIN_BLOCKS = 20
KINDS = ("raw", "model", "shipped")
CORE = "logistic shipped"  # the candidate the positioning variants must beat


def block_length(horizon: str) -> int:
    return max(HORIZONS[horizon], 10)


def _columns(prefix: str) -> list[str]:
    return [f"{prefix}_{c}" for c in DIRECTION_CLASSES]


def fold_forecasts(
    full: TrainingData, current: pd.DataFrame
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """One row per (session, horizon) the current model forecast: its forecast, the
    candidate's, the fold's climatology and the label; and per fold what the candidate chose."""
    x = full.features.to_numpy(dtype=float)
    y, _ = targets(full)
    index = full.frame.index
    rows, folds = [], []
    for end, block in current.groupby("fold_train_end", sort=True):
        candidate: LogisticDirection = train_logistic_direction(full.cut(end))
        dates = pd.DatetimeIndex(sorted(block["date"].unique()))
        pos = index.get_indexer(dates)
        folds.append(
            {
                "train_end": str(end),
                "sessions": len(dates),
                **{
                    h: {"c": hd.c, "weight": hd.fitted_weight, "gate": hd.gate.to_dict()}
                    for h, hd in candidate.heads.items()
                },
            }
        )
        for j, h in enumerate(HORIZON_KEYS):
            cur = block[block["horizon"] == h].set_index("date").loc[dates]
            table = pd.DataFrame(
                {"date": dates, "horizon": h, "fold_train_end": str(end), "position": pos}
            )
            for kind in KINDS:
                table[_columns(kind)] = candidate.predict(x[pos], h, kind)
            table[_columns("current")] = cur[_columns("p")].to_numpy()
            table[_columns("clim")] = candidate.heads[h].climatology_window
            table["live"] = candidate.heads[h].gate.live
            table["label"] = y[pos, j]
            rows.append(table)
    return pd.concat(rows, ignore_index=True), folds


def compare(g: pd.DataFrame, forecast: str, baseline: str, horizon: str) -> dict[str, Any]:
    """Brier skill of ``forecast`` against ``baseline`` on ``g``'s labelled rows, with its
    block-bootstrap interval."""
    labels = g["label"].to_numpy().astype(int)
    loss = pd.DataFrame(
        {
            "f": calibration.brier_rows(g[_columns(forecast)].to_numpy(), labels),
            "b": calibration.brier_rows(g[_columns(baseline)].to_numpy(), labels),
            "block": np.arange(len(g)) // block_length(horizon),
        }
    )

    def skill(d: pd.DataFrame) -> float:
        return 1 - float(d["f"].sum()) / float(d["b"].sum())

    return {"brier_skill": round(skill(loss), 5), "interval": interval(loss, skill, by="block")}


def describe(g: pd.DataFrame, forecast: str) -> dict[str, Any]:
    probs, labels = g[_columns(forecast)].to_numpy(), g["label"].to_numpy().astype(int)
    top = probs.argmax(1)
    return {
        "brier": round(m.brier(probs, labels), 5),
        "ece": round(m.ece(probs.max(1), (top == labels).astype(float)), 4),
        "accuracy": round(float(np.mean(top == labels)), 4),
    }


def verdict(sessions: int, horizon: str, comparisons: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The candidate gate of docs/MODELS.md on already computed comparisons."""
    blocks = sessions // block_length(horizon)
    enough = sessions >= MIN_SESSIONS and blocks >= MIN_BLOCKS
    above = all(c["interval"][0] > 0 for c in comparisons)
    reason = (
        f"{sessions} sessions, {blocks} blocks: below the minimum ({MIN_SESSIONS}, {MIN_BLOCKS})"
        if not enough
        else "every interval above zero"
        if above
        else "an interval reaches zero or below"
    )
    return {"passes": enough and above, "blocks": blocks, "reason": reason}


def score_candidates(table: pd.DataFrame) -> dict[str, Any]:
    out: dict[str, Any] = {}
    scored = table.dropna(subset=["label"])
    for h, g in scored.groupby("horizon", sort=False):
        g = g.sort_values("date")
        entry: dict[str, Any] = {
            "sessions": len(g),
            "window": f"{g['date'].min():%Y-%m-%d}..{g['date'].max():%Y-%m-%d}",
            "climatology": describe(g, "clim"),
            "current": {
                **describe(g, "current"),
                "vs_climatology": compare(g, "current", "clim", h),
            },
            "logistic_live_share": round(float(g["live"].mean()), 4),
        }
        for kind in KINDS:
            entry[f"logistic {kind}"] = {
                **describe(g, kind),
                "vs_climatology": compare(g, kind, "clim", h),
                "vs_current": compare(g, kind, "current", h),
            }
        shipped = entry["logistic shipped"]
        entry["gate"] = verdict(len(g), h, [shipped["vs_climatology"], shipped["vs_current"]])
        out[str(h)] = entry
    return out


def score_positioning(table: pd.DataFrame, inputs: pd.DataFrame) -> dict[str, Any]:
    """Each positioning variant on the sessions where its inputs exist and its correction has
    been fitted, against the core without them, climatology and the current model."""
    out: dict[str, Any] = {}
    for h in HORIZON_KEYS:
        g = table[table["horizon"] == h].sort_values("date").reset_index(drop=True)
        labels = g["label"].to_numpy()
        core = g[_columns("model")].to_numpy()
        forecasts = {}
        for name, columns in VARIANTS.items():
            # covered: the levels exist (a change may be missing, e.g. across an expiry)
            required = [c for c in columns if not c.endswith("_change")] or ["log_pcr"]
            covered = inputs.loc[g["date"], required].notna().all(axis=1).to_numpy()
            f = np.full(core.shape, np.nan)
            x = inputs.loc[g["date"], list(columns)].to_numpy(dtype=float)[covered]
            f[covered] = corrected(
                core[covered], x, labels[covered], g["position"].to_numpy()[covered], HORIZONS[h]
            )
            forecasts[name] = f
        entry: dict[str, Any] = {}
        baseline_name = next(iter(VARIANTS))
        for name, f in forecasts.items():
            ok = ~np.isnan(f[:, 0]) & ~np.isnan(labels)
            if name != baseline_name:
                # the variant's rows: the correction without inputs is scored on the same rows
                ok &= ~np.isnan(forecasts[baseline_name][:, 0])
            s = g[ok].assign(
                **dict(zip(_columns("variant"), f[ok].T, strict=True)),
                **dict(zip(_columns("recal"), forecasts[baseline_name][ok].T, strict=True)),
            )
            if s.empty:
                entry[name] = {"sessions": 0}
                continue
            comparisons = {
                "vs_climatology": compare(s, "variant", "clim", h),
                "vs_current": compare(s, "variant", "current", h),
                f"vs_{CORE}": compare(s, "variant", "shipped", h),
                "vs_logistic model": compare(s, "variant", "model", h),
            }
            if name != baseline_name:
                comparisons["vs_core recalibrated"] = compare(s, "variant", "recal", h)
            gated = [
                comparisons[k]
                for k in ("vs_climatology", "vs_current", "vs_core recalibrated")
                if k in comparisons
            ]
            entry[name] = {
                "sessions": len(s),
                "window": f"{s['date'].min():%Y-%m-%d}..{s['date'].max():%Y-%m-%d}",
                **describe(s, "variant"),
                "climatology": describe(s, "clim"),
                **comparisons,
                "gate": verdict(len(s), h, gated),
            }
        out[h] = entry
    return out


def run_direction_candidates(
    nifty_csvs: Sequence[Path],
    vix_csvs: Sequence[Path],
    runs: Sequence[Path],
    chain_csv: Path,
    participants: Path,
    futures_csv: Path,
    out_dir: Path,
) -> dict[str, Any]:
    full = load_training_data(nifty_csvs, vix_csvs, None)
    current = load_runs(runs, ("direction",))["direction"]
    table, folds = fold_forecasts(full, current)
    dates = full.frame.index
    inputs = chain_inputs(dates, chain_csv).join(
        participant_inputs(dates, participants, futures_csv)
    )
    result = {
        "window": f"{table['date'].min():%Y-%m-%d}..{table['date'].max():%Y-%m-%d}",
        "note": "Brier skill = 1 - Brier(forecast) / Brier(baseline); intervals 90 %, blocks "
        "of max(h, 10) sessions resampled; gate: docs/MODELS.md 'Candidate gate'",
        "candidates": score_candidates(table),
        "positioning": score_positioning(table, inputs),
        "folds": folds,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(
        out_dir / "forecasts.csv", index=False, float_format="%.6g", date_format="%Y-%m-%d"
    )
    return result
