"""The volatility evaluation scores what it says: coverage per regime and days-to-expiry
bucket, the VIX band at the same coverage, breach Brier against the lognormal, and the
floors computed from those numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from services.trainer import vol_evaluation as ve


def _seller(n: int = 400, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    spot = np.full(n, 100.0)
    move = rng.normal(0, 0.02, n)
    dte = np.tile([1, 2, 3, 6], n // 4)
    regime = np.repeat(["LOW", "HIGH"], n // 2)
    return pd.DataFrame(
        {
            "date": pd.bdate_range("2020-01-01", periods=n),
            "expiry": np.arange(n) // 5,  # five sessions target each expiry
            "spot": spot,
            "expiry_close": spot * np.exp(move),
            "safe_lower": spot * np.exp(-0.033),  # ~90 % of N(0, 0.02)
            "safe_upper": spot * np.exp(0.033),
            "vix_lower": spot * np.exp(-0.05),  # wider: ~99 %
            "vix_upper": spot * np.exp(0.05),
            "days_to_expiry": dte,
            "regime": regime,
        }
    ).assign(
        inside=lambda f: (
            (f.expiry_close >= f.safe_lower) & (f.expiry_close <= f.safe_upper)
        ).astype(float),
        inside_vix_band=lambda f: (
            (f.expiry_close >= f.vix_lower) & (f.expiry_close <= f.vix_upper)
        ).astype(float),
    )


def test_safe_range_coverage_by_regime_and_bucket() -> None:
    s = _seller()
    out = ve.safe_range(s)
    assert out["coverage"] == pytest.approx(s["inside"].mean())
    assert set(out["by_regime"]) == {"LOW", "HIGH"}
    assert set(out["by_dte"]) == {"0-1", "2-3", "4+"}
    assert out["by_dte"]["4+"]["samples"] == 100
    # the VIX band shrunk to the model's coverage is about as wide as the model's range
    assert out["vix_band_same_coverage_width_log"] == pytest.approx(0.066, rel=0.15)
    assert out["vix_band_calibrated_width_log"] == pytest.approx(0.1)
    assert out["floor_coverage_088_092_everywhere"] == all(
        0.88 <= g["coverage"] <= 0.92
        for g in (out, *out["by_regime"].values(), *out["by_dte"].values())
    )


def test_coverage_noise_counts_an_expiry_once_not_once_per_session() -> None:
    """Sessions targeting one expiry share its settlement: when they all agree, the standard
    error is that of one draw per expiry (sqrt(5) larger than treating them as independent);
    with one session per expiry it is the plain binomial one."""
    x = pd.Series(np.repeat(np.resize([1.0] * 9 + [0.0], 80), 5))  # 90 % covered, by expiry
    clusters = pd.Series(np.arange(400) // 5)
    p = x.mean()
    assert ve.cluster_se(x, clusters) == pytest.approx(np.sqrt(p * (1 - p) / 80))
    singles = pd.Series(np.arange(400))
    assert ve.cluster_se(x, singles) == pytest.approx(np.sqrt(p * (1 - p) / 400))
    out = ve.safe_range(_seller())
    assert out["expiries"] == 80 and out["by_regime"]["LOW"]["expiries"] == 40
    assert out["coverage_se_by_expiry"] > 0


def test_breach_floor_follows_the_brier_against_the_lognormal() -> None:
    rng = np.random.default_rng(5)
    p_true = rng.uniform(0.01, 0.5, 5000)
    y = (rng.uniform(size=5000) < p_true).astype(float)
    table = pd.DataFrame(
        {
            "breached": y,
            "probability": p_true,
            "probability_lognormal": np.clip(p_true * 1.4, 0, 1),
            "regime": np.repeat(["LOW", "NORMAL"], 2500),
            "days_to_expiry": np.tile([0, 3, 6, 6], 1250),
        }
    )
    out = ve.breach(table)
    assert out["brier"] < out["brier_lognormal"] and out["floor_brier_003"]
    assert out["floor_bins_within_002"]
    by_dte = {k: v["samples"] for k, v in out["by_dte"].items()}
    assert by_dte == {"0-1": 1250, "2-3": 1250, "4+": 2500}
    low = table[table["regime"] == "LOW"]
    assert out["by_regime"]["LOW"]["brier"] == pytest.approx(
        np.mean((low["probability"] - low["breached"]) ** 2)
    )
    swapped = ve.breach(
        table.rename(
            columns={"probability": "probability_lognormal", "probability_lognormal": "probability"}
        )
    )
    assert not swapped["floor_brier_003"] and not swapped["floor_bins_within_002"]


def test_trap_and_stress_are_scored_per_regime_and_bucket_beside_their_baselines() -> None:
    rng = np.random.default_rng(7)
    n = 2000
    vix = rng.uniform(10, 30, n)
    p = rng.uniform(0.05, 0.6, n)
    table = pd.DataFrame(
        {
            "trap_actual": (rng.uniform(size=n) < p).astype(float),
            "trap_probability": p,
            "trap_base_rate": 0.25,
            "sigma20": rng.uniform(0.05, 0.3, n),
            "vix": vix,
            "regime": np.where(vix < 13, "LOW", np.where(vix < 20, "NORMAL", "HIGH")),
            "days_to_expiry": np.tile([1, 2, 5, 6], n // 4),
            "rv_next5": vix / 100 * rng.lognormal(0, 0.3, n),
            "stress_score": vix + rng.normal(0, 5, n),
            "stress_score_baseline": vix,
        }
    )
    trap = ve.trap(table)
    assert set(trap["by_regime"]) == {"LOW", "NORMAL", "HIGH"}
    assert set(trap["by_dte"]) == {"0-1", "2-3", "4+"}
    assert sum(g["samples"] for g in trap["by_dte"].values()) == n
    assert trap["auc"] > 0.6 > trap["auc_vix_level"]  # p carries the outcome, VIX does not
    assert all(g["auc"] > 0.55 for g in trap["by_regime"].values())
    stress = ve.stress(table)
    assert stress["by_dte"]["4+"]["samples"] == n // 2
    # the noisy score ranks worse than the VIX level it was made from, in every group
    assert stress["spearman_rv5"] < stress["spearman_rv5_vix_level"]
    assert all(g["spearman"] < g["spearman_vix"] for g in stress["by_dte"].values())
