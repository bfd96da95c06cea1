"""The chain-input variants of the volatility signals are scored honestly: a refit never trains
on a session whose expiry or label had not settled, the bootstrap resamples whole expiries, the
gate needs the sample and every interval, and it can both fail (the bundled history on a short
window) and pass (an input that carries the scale, on synthetic sessions)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from services.trainer import vol_chain_gate as gate
from services.trainer import vol_chain_variants as v
from services.trainer.__main__ import main
from services.trainer.vol_chain_data import (
    CHAIN_INPUTS,
    MARKET_INPUTS,
    ChainSessions,
    load_sessions,
)
from services.trainer.vol_chain_scores import Comparison, Resampler

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
RUNS = [ROOT / "docs" / "evaluation", ROOT / "docs" / "evaluation" / "later"]
SOURCES = (
    DATA / "nifty_chain_features_daily_2023-08_2026-02.csv",
    DATA / "nse_participant_oi_daily_2024-09_2026-02.csv",
    DATA / "nifty_futures_daily_2024-09_2026-02.csv",
)


@pytest.fixture(scope="module")
def bundled() -> ChainSessions:
    return load_sessions(RUNS, *SOURCES)


def test_the_sessions_are_the_chain_days_whose_expiry_is_the_forecasts(
    bundled: ChainSessions,
) -> None:
    g = bundled.sessions
    assert len(g) > 450 and g["date"].is_monotonic_increasing
    assert (pd.to_datetime(g["expiry"]) == g["chain_expiry"]).all()
    assert (g["days_to_expiry"] >= 1).all()  # expiry days are out
    assert bundled.strikes.groupby("date").size().eq(12).all()
    # the market inputs exist only once the reports do (from 2024-09)
    assert g.loc[g["date"] < "2024-09-01", list(MARKET_INPUTS)].isna().all().all()


@pytest.mark.parametrize("name", ["D1", "T1", "S1"])
def test_a_refit_never_trains_on_a_session_that_had_not_settled(
    bundled: ChainSessions, name: str
) -> None:
    variants: dict[str, v.ScaleVariant | v.TrapVariant | v.StressVariant] = {
        **v.SCALE_VARIANTS,
        **v.TRAP_VARIANTS,
        **v.STRESS_VARIANTS,
    }
    variant = variants[name]
    g = bundled.sessions
    before = v.walk_forward(g, variant)
    start = 10 * v.REFIT_EVERY
    unsettled = ~v.training_rows(g, start)
    altered = g.copy()
    altered.loc[unsettled, "r"] *= -3
    altered.loc[unsettled, "trap_actual"] = 1 - altered.loc[unsettled, "trap_actual"]
    altered.loc[unsettled, "rv_next5"] *= 2
    after = v.walk_forward(altered, variant)
    block = slice(start, start + v.REFIT_EVERY)
    np.testing.assert_array_equal(before.forecast[block], after.forecast[block])
    assert np.isnan(before.forecast[: v.MIN_TRAINING]).all()
    later = slice(start + v.REFIT_EVERY, None)
    assert not np.allclose(before.forecast[later], after.forecast[later], equal_nan=True)


def test_the_bootstrap_resamples_whole_expiries_and_ranks_ties_on_average() -> None:
    # one expiry of a single 0 and one of three 1s: a draw's total is 0, 3, 1 + 3 or 6
    r = Resampler(np.array(["a", "b", "b", "b"]))
    total, draws = r.totals(np.array([0.0, 1.0, 1.0, 1.0]))
    assert total == 3.0 and set(np.unique(draws)) <= {0.0, 3.0, 4.0, 6.0}
    rng = np.random.default_rng(3)
    x = np.round(rng.normal(size=60), 1)  # ties
    y = x + rng.normal(size=60)
    r = Resampler(np.repeat(np.arange(15), 4), draws=5)
    point, draws = r.spearman(x, y)
    assert point == pytest.approx(spearmanr(x, y)[0])
    pick = np.repeat(np.arange(60), r.counts[0][r.codes].astype(int))
    assert draws[0] == pytest.approx(spearmanr(x[pick], y[pick])[0])


def test_the_verdict_needs_the_sample_every_interval_and_the_coverage() -> None:
    above, touching = Comparison(0.02, (0.001, 0.04)), Comparison(0.02, (0.0, 0.04))
    assert gate.verdict(300, 80, {"a": above, "b": above}, 0.9)["passes"]
    assert gate.verdict(300, 80, {"a": above}, None)["passes"]
    assert not gate.verdict(300, 80, {"a": above, "b": touching}, 0.9)["passes"]
    assert not gate.verdict(249, 80, {"a": above}, 0.9)["passes"]
    assert not gate.verdict(300, 59, {"a": above}, 0.9)["passes"]
    assert not gate.verdict(300, 80, {"a": above}, 0.94)["passes"]


def test_on_a_short_window_the_command_runs_and_the_gate_fails(tmp_path: Path) -> None:
    chain, participants, futures = (str(p) for p in SOURCES)
    args = ["evaluate-vol-chain", "--runs", *(str(p) for p in RUNS), "--chain", chain]
    args += ["--participants", participants, "--futures", futures]
    assert main([*args, "--end", "2025-03-31", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "metrics.json").read_text())
    assert "2025-03-20" < result["window"][-10:] <= "2025-03-31" and result["passes"] == []
    signals = result["signals"]
    assert set(signals) == {"move", "safe_range", "breach", "trap", "stress"}
    move = signals["move"]["D1"]
    assert 0 < move["sessions"] < gate.MIN_SESSIONS
    assert {"vs better baseline", "vs shipped today", "vs control"} <= set(move["model"])
    assert move["level"]["D1"] > 0 and move["live_share"] == 0
    for signal in signals.values():
        for name in v.CANDIDATES:
            if name in signal:
                reason = signal[name]["gate"]["reasons"][0]
                assert not signal[name]["gate"]["passes"]
                assert "below the minimum" in reason or "nothing to score" in reason


def synthetic_sessions(n: int = 800, seed: int = 0) -> ChainSessions:
    """Sessions where the straddle carries the true scale (priced 15 % rich) and the core and
    VIX only a noisy version of it."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2020-01-06", periods=n)
    expiry = dates[np.minimum((np.arange(n) // 5 + 1) * 5, n - 1)]
    sigma = 0.012 * np.exp(0.6 * rng.normal(size=n))  # one-sigma log move to expiry
    r = sigma * rng.normal(size=n)
    mean_abs = sigma * np.sqrt(2 / np.pi)
    noisy = mean_abs * np.exp(0.5 * rng.normal(size=n))
    straddle_noise = np.exp(0.2 * rng.normal(size=n))
    spot = np.full(n, 100.0)
    g = pd.DataFrame(
        {
            "date": dates,
            "expiry": expiry.strftime("%Y-%m-%d"),
            "days_to_expiry": np.maximum((expiry - dates).days, 1),
            "spot": spot,
            "expiry_close": spot * np.exp(r),
            "r": r,
            "straddle_move": 1.5 * mean_abs * straddle_noise,
            "straddle_sigma": 1.5 * sigma * straddle_noise,
            "straddle_iv": 15 * sigma * straddle_noise,
            "predicted_move": noisy,
            "shipped_move": noisy,
            "vix_move": mean_abs * np.exp(0.5 * rng.normal(size=n)),
            "vix": 15.0 * np.exp(0.2 * rng.normal(size=n)),
            "sigma20": 0.01 * np.exp(0.2 * rng.normal(size=n)),
            "vol_forecast": 0.12 * np.exp(0.2 * rng.normal(size=n)),
            "rv_next5": 0.12 * np.exp(0.3 * rng.normal(size=n)),
            "trap_actual": (rng.random(n) < 0.2).astype(float),
            "trap_base_rate": 0.2,
            "trap_probability": 0.2,
            "term_gap": rng.normal(size=n),
            **{c: rng.normal(size=n) for c in CHAIN_INPUTS},
            **{c: np.nan for c in MARKET_INPUTS},
        }
    )
    g = g.assign(
        core_logit=np.log(0.25),
        shipped_trap=0.2,
        stress_score=g["vol_forecast"],
        shipped_stress=g["vol_forecast"],
    )
    for prefix in ("vix", "safe", "shipped"):
        g[f"{prefix}_lower"] = spot * np.exp(-1.645 * noisy * np.sqrt(np.pi / 2))
        g[f"{prefix}_upper"] = spot * np.exp(1.645 * noisy * np.sqrt(np.pi / 2))
    strikes = g[["date", "straddle_sigma", "r"]].merge(
        pd.DataFrame({"strike_pct": [0.5, 1.0, 2.0] * 2, "side": ["above"] * 3 + ["below"] * 3}),
        how="cross",
    )
    sign = np.where(strikes["side"] == "above", 1.0, -1.0)
    strikes["log_strike"] = np.log1p(sign * strikes["strike_pct"] / 100)
    above = strikes["log_strike"] > 0
    strikes["breached"] = np.where(
        above, strikes["r"] > strikes["log_strike"], strikes["r"] < strikes["log_strike"]
    ).astype(float)
    strikes["probability"] = strikes["probability_lognormal"] = 0.2
    strikes["live_expiry_range"] = "model"
    return ChainSessions(g, strikes.drop(columns="r"))


def test_the_gate_passes_an_input_that_carries_the_scale() -> None:
    result = gate.evaluate(synthetic_sessions())
    d1 = result["move"]["D1"]
    assert d1["gate"]["passes"], d1["gate"]
    assert 0 < d1["live_share"] < 1  # live only once its own validation window was long enough
    assert d1["gate_cost"] > 0  # the sessions before that cost it some of its improvement
    assert not result["move"]["D3"]["gate"]["passes"]  # no market inputs: nothing to score
