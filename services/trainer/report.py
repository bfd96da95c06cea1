"""The walk-forward report: one self-contained HTML page (plots as base64 PNG, no CDN)."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from services.trainer.metrics import reliability
from shared.models.api import DIRECTION_CLASSES


def _png(fig: plt.Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}"/>'


def _reliability_plot(tables: dict[str, pd.DataFrame]) -> str:
    d = tables["direction"].dropna(subset=["actual"])
    horizons = list(dict.fromkeys(d["horizon"]))
    fig, axes = plt.subplots(1, len(horizons), figsize=(3 * len(horizons), 3), sharey=True)
    for ax, h in zip(np.atleast_1d(axes), horizons, strict=True):
        g = d[d["horizon"] == h]
        for c in DIRECTION_CLASSES:
            bins = reliability(g[f"p_{c}"].to_numpy(), (g["actual"] == c).to_numpy(float))
            ax.plot([b["forecast"] for b in bins], [b["observed"] for b in bins], "o-", label=c)
        ax.plot([0, 1], [0, 1], "k:", lw=1)
        ax.set_title(h)
        ax.set_xlabel("forecast")
    np.atleast_1d(axes)[0].set_ylabel("observed")
    np.atleast_1d(axes)[0].legend(fontsize=7)
    return _png(fig)


def _coverage_plot(tables: dict[str, pd.DataFrame], target: float) -> str:
    s = tables["seller"].dropna(subset=["inside"]).set_index("date")
    fig, ax = plt.subplots(figsize=(9, 3))
    rolling = s["inside"].rolling(126, min_periods=40).mean()
    rolling.plot(ax=ax, label="rolling 126-session coverage")
    ax.axhline(target, color="k", ls=":", label=f"target {target:.0%}")
    ax.set_ylim(0.6, 1.02)
    ax.legend(fontsize=8)
    return _png(fig)


def _breach_plot(summary: dict[str, Any]) -> str:
    bins = summary["breach"]["reliability"]
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot([b["forecast"] for b in bins], [b["observed"] for b in bins], "o-")
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set_xlabel("predicted P(breach)")
    ax.set_ylabel("observed breach rate")
    return _png(fig)


def _vol_reliability_plot(vol: dict[str, Any]) -> str:
    """Trap and breach reliability, each beside its baseline."""
    fig, axes = plt.subplots(1, 2, figsize=(8, 4))
    panels = (
        ("volatility trap", vol["trap"]["reliability"], None),
        ("breach curve", vol["breach"]["reliability"], vol["breach"]["reliability_lognormal"]),
    )
    for ax, (title, bins, base) in zip(axes, panels, strict=True):
        ax.plot([b["forecast"] for b in bins], [b["observed"] for b in bins], "o-", label="core")
        if base:
            ax.plot(
                [b["forecast"] for b in base],
                [b["observed"] for b in base],
                "s--",
                label="VIX lognormal",
            )
        ax.plot([0, 1], [0, 1], "k:", lw=1)
        ax.set_title(title)
        ax.set_xlabel("forecast")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("observed")
    return _png(fig)


def _volatility_section(vol: dict[str, Any]) -> str:
    trap, stress, move, rng, breach = (
        vol[k] for k in ("trap", "stress", "move_to_expiry", "safe_range", "breach")
    )
    headline = {
        "trap AUC (floor 0.68)": {
            "model": trap["auc"],
            "baseline": trap["auc_sigma20_over_vix"],
            "baseline name": "σ20/VIX",
        },
        "trap Brier skill vs base rate (floor +6 %)": {
            "model": trap["brier_skill"],
            "baseline": 0.0,
            "baseline name": "training base rate",
        },
        "stress Spearman with next-5 RV": {
            "model": stress["spearman_rv5"],
            "baseline": stress["spearman_rv5_vix_level"],
            "baseline name": "VIX level",
        },
        "move to expiry MAE (floor 5 % below)": {
            "model": move["mae_model"],
            "baseline": move["mae_vix_implied"],
            "baseline name": "VIX-implied move",
        },
        "safe range coverage (floor 88–92 %)": {
            "model": rng["coverage"],
            "baseline": rng["vix_band_calibrated_coverage"],
            "baseline name": "calibrated VIX band",
        },
        "safe range mean log width": {
            "model": rng["mean_width_log"],
            "baseline": rng["vix_band_same_coverage_width_log"],
            "baseline name": "VIX band at the same coverage",
        },
        "breach Brier (floor 3 % below)": {
            "model": breach["brier"],
            "baseline": breach["brier_lognormal"],
            "baseline name": "VIX lognormal",
        },
    }
    cov_cols = ["samples", "expiries", "coverage", "coverage_se_by_expiry", "below", "above"]
    cov_cols += ["mean_width_log"]
    cov_cols += ["vix_band_calibrated_coverage", "vix_band_same_coverage_width_log"]
    mae_cols = ["samples", "mae_model", "mae_vix_implied", "reduction"]
    trap_cols = ["samples", "auc", "auc_sigma20_over_vix", "auc_vix_level", "brier_skill", "ece"]
    trap_cols += ["observed_rate"]
    stress_cols = ["samples", "spearman", "spearman_vix"]
    breach_cols = ["samples", "brier", "brier_lognormal", "reduction_vs_lognormal"]
    floors = {
        k: {"met": v}
        for sig in (trap, stress, move, rng, breach)
        for k, v in sig.items()
        if k.startswith("floor_")
    }
    return f"""<h2>Volatility core: every signal beside its strongest simple baseline</h2>
{_table(headline, ["model", "baseline", "baseline name"])}
<h3>Floors</h3>{_table(floors, ["met"])}
<h3>Safe range by VIX regime</h3>{_table(rng["by_regime"], cov_cols)}
<h3>Safe range by days to expiry</h3>{_table(rng["by_dte"], cov_cols)}
<h3>Move to expiry by VIX regime</h3>{_table(move["by_regime"], mae_cols)}
<h3>Move to expiry by days to expiry</h3>{_table(move["by_dte"], mae_cols)}
<h3>Trap by VIX regime</h3>{_table(trap["by_regime"], trap_cols)}
<h3>Trap by days to expiry</h3>{_table(trap["by_dte"], trap_cols)}
<h3>Stress by VIX regime</h3>{_table(stress["by_regime"], stress_cols)}
<h3>Stress by days to expiry</h3>{_table(stress["by_dte"], stress_cols)}
<h3>Breach curve by VIX regime</h3>{_table(breach["by_regime"], breach_cols)}
<h3>Breach curve by days to expiry</h3>{_table(breach["by_dte"], breach_cols)}
<h3>Reliability</h3>{_vol_reliability_plot(vol)}
<p>Sessions on which each signal shipped the model or its baseline (the trainer's choice on
each fold's validation window): {html.escape(str(vol["live_sessions"]))}. As shipped (core
where live, baseline elsewhere): {html.escape(str(vol.get("shipped")))}</p>"""


def _table(rows: dict[str, dict[str, Any]], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["", *columns])
    body = "".join(
        "<tr><td>"
        + html.escape(k)
        + "</td>"
        + "".join(f"<td>{_fmt(v.get(c))}</td>" for c in columns)
        + "</tr>"
        for k, v in rows.items()
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else html.escape(str(v))


def write_report(tables: dict[str, pd.DataFrame], summary: dict[str, Any], path: Any) -> None:
    dir_cols = [
        "samples",
        "accuracy",
        "accuracy_majority",
        "balanced_accuracy",
        "balanced_accuracy_majority",
        "log_loss",
        "log_loss_climatology",
        "brier",
        "brier_climatology",
        "brier_skill_vs_climatology",
        "ece",
    ]
    bin_cols = [
        "samples",
        "accuracy",
        "log_loss",
        "log_loss_base_rate",
        "brier",
        "brier_base_rate",
        "brier_skill",
        "ece",
        "observed_rate",
        "mean_forecast",
    ]
    sr = summary["safe_range"]
    binary = {
        "volatility trap": summary["trap"],
        "breach (all strikes)": summary["breach"],
        "spike direction (up | spike)": summary["spike_direction"],
        **{f"breakout {k}": v for k, v in summary["breakout"].items()},
    }
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>AegisMatrix walk-forward</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:auto}}
table{{border-collapse:collapse;font-size:12px}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}</style></head><body>
<h1>Walk-forward evaluation</h1>
<p>Window {summary["window"]}; expanding training window, retrained every
{summary["run"]["retrain_every"]} sessions; profile {"fast" if summary["run"]["fast"] else "full"}.
Every forecast is out of sample. Baselines: climatology = class frequencies of the training
period; majority = its most frequent class; base rate = the training frequency.</p>
<h2>Direction</h2>{_table(summary["direction"], dir_cols)}
<h3>Reliability (per class)</h3>{_reliability_plot(tables)}
<h2>Safe range</h2><p>Target {sr["target"]:.0%}; measured coverage {sr["coverage"]:.1%}
over {sr["samples"]} sessions (below the range {sr["below"]:.1%}, above {sr["above"]:.1%}).</p>
{_table(sr["by_regime"], ["coverage", "samples"])}{_coverage_plot(tables, sr["target"])}
<h2>Binary forecasts</h2>{_table(binary, bin_cols)}
<h3>Breach-curve calibration</h3>{_breach_plot(summary)}
<h2>Expiry stress (3 classes vs 1/3 each)</h2>{_table({"stress": summary["stress"]}, dir_cols)}
{_volatility_section(summary["volatility"]) if "volatility" in summary else ""}
<h2>Move to expiry (absolute log move)</h2>{
        _table(
            {"move": summary["move_to_expiry"]},
            ["samples", "mae_model", "mae_implied", "mae_training_mean"],
        )
    }
</body></html>"""
    with open(path, "w") as fh:
        fh.write(page)
