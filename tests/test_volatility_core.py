"""The volatility core: range-based estimators, their look-ahead safety, the one predictive
distribution (range and breach curve consistent by construction), and the per-signal choice
between the core and its baseline as the seller engine publishes it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from services.seller.compute import breach_group, safe_range_group, stress_group, trap_group
from services.trainer.data import TrainingData
from services.trainer.profiles import FAST
from services.trainer.seller import _choice, train_seller
from services.trainer.vol import VolTargets, fit_core
from shared.bus.engine import EngineContext, ModelBook
from shared.config import PROJECT_ROOT, Settings
from shared.contract.document.base import Selection
from shared.features import volatility as vol
from shared.features.daily import compute_daily_features
from shared.models.api import DailyFeatures, vix_regime
from shared.models.buyer import BuyerModels
from shared.models.seller import HEAD_FILE, SIGNALS, SellerModels
from shared.models.stats import MeasuredStatistics
from shared.models.volatility import VolatilityCore, dte_bucket
from tests.engines_support import daily_snapshot
from tests.models_support import loaded, short_data, trained_registry

YEAR = 252


def test_range_estimators_match_their_closed_forms() -> None:
    o, h, lo, c = (np.array([x]) for x in (100.0, 110.0, 90.0, 104.0))
    hl, co = math.log(110 / 90), math.log(104 / 100)
    assert vol.parkinson_var(h, lo)[0] == pytest.approx(hl**2 / (4 * math.log(2)))
    assert vol.garman_klass_var(o, h, lo, c)[0] == pytest.approx(
        0.5 * hl**2 - (2 * math.log(2) - 1) * co**2
    )
    rs = math.log(110 / 104) * math.log(110 / 100) + math.log(90 / 104) * math.log(90 / 100)
    assert vol.rogers_satchell_var(o, h, lo, c)[0] == pytest.approx(rs)


def test_yang_zhang_is_its_three_components() -> None:
    rng = np.random.default_rng(7)
    n, window = 60, 20
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    o = np.concatenate([[100.0], c[:-1]]) * np.exp(rng.normal(0, 0.003, n))
    h = np.maximum(o, c) * (1 + rng.uniform(0, 0.01, n))
    lo = np.minimum(o, c) * (1 - rng.uniform(0, 0.01, n))
    got = vol.yang_zhang_var(o, h, lo, c, window)[-1]
    k = 0.34 / (1.34 + (window + 1) / (window - 1))
    on = np.log(o[1:] / c[:-1])[-window:]
    oc = np.log(c / o)[-window:]
    rs = vol.rogers_satchell_var(o, h, lo, c)[-window:]
    assert got == pytest.approx(on.var(ddof=1) + k * oc.var(ddof=1) + (1 - k) * rs.mean())
    assert np.isnan(vol.yang_zhang_var(o, h, lo, c, window)[window - 1])  # first gap unknown


def test_estimators_agree_on_real_history() -> None:
    f = short_data().features.dropna(subset=["vol_gk_20", "vol_yz_20", "rv_20"])
    for name in ("vol_pk_20", "vol_gk_20", "vol_rs_20", "vol_yz_20", "vol_har_m"):
        ratio = (f[name] / f["rv_20"]).median()
        assert 0.6 < ratio < 1.4, (name, ratio)  # same scale as close-to-close, not identical
    assert not np.allclose(f["vol_gk_20"], f["vol_yz_20"])


def test_volatility_features_ignore_future_rows() -> None:
    frame = short_data().frame
    cut = 400
    base = compute_daily_features(frame.iloc[: cut + 1])
    altered = frame.copy()
    altered.iloc[cut + 1 :, :4] *= 1.3  # a crash after the cut
    after = compute_daily_features(altered).iloc[: cut + 1]
    cols = list(vol.VOLATILITY_FEATURE_NAMES)
    pd.testing.assert_frame_equal(base[cols], after[cols])


def test_minute_realised_variance_sums_squared_returns_within_sessions() -> None:
    log_close = np.log(np.array([100.0, 101.0, 100.0, 200.0, 202.0]))
    sessions = np.array([1, 1, 1, 2, 2])  # the 100 -> 200 gap is between sessions
    got = vol.minute_realised_variance(log_close, sessions)
    expected = [math.log(1.01) ** 2 + math.log(100 / 101) ** 2, math.log(1.01) ** 2]
    assert got == pytest.approx(expected)


def test_targets_of_a_cut_window_never_reach_past_it() -> None:
    data = short_data()
    cut = TrainingData(data.frame.iloc[:500])
    t_cut, t_full = VolTargets.of(cut), VolTargets.of(data)
    assert np.isnan(t_cut.log_rv5[-5:]).all()
    known = np.isfinite(t_cut.log_rv5)
    np.testing.assert_allclose(t_cut.log_rv5[known], t_full.log_rv5[:500][known])


@pytest.fixture(scope="module")
def core() -> VolatilityCore:
    return VolatilityCore(fit_core(VolTargets.of(short_data())))


def test_range_bounds_are_the_breach_curves_quantiles(core: VolatilityCore) -> None:
    daily = {k: float(v) for k, v in short_data().features.iloc[-1].items()}
    spot, coverage = 15000.0, 0.9
    for sessions, days in ((1, 1), (3, 5), (5, 7)):
        lower, upper = core.range_bounds(daily, spot, sessions, days, coverage)
        assert lower < spot < upper
        assert core.breach_probability(daily, spot, upper, sessions, days) == pytest.approx(0.05)
        assert core.breach_probability(daily, spot, lower, sessions, days) == pytest.approx(0.05)
        above = [
            core.breach_probability(daily, spot, spot * (1 + d), sessions, days)
            for d in (0.005, 0.01, 0.02, 0.03)
        ]
        assert above == sorted(above, reverse=True) and above[0] > above[-1]
    probs = core.stress_probabilities(daily, 3)
    assert sum(probs.values()) == pytest.approx(1) and min(probs.values()) >= 0


def test_breach_curve_in_one_call_is_the_per_strike_probabilities_exactly(
    core: VolatilityCore,
) -> None:
    """The engine asks for all strikes at once (one scale, one table); the numbers are the
    same floats as one call per strike, on a fresh core and on one that remembers m."""
    daily = {k: float(v) for k, v in short_data().features.iloc[-1].items()}
    spot = 15000.0
    strikes = [spot * (1 + d) for d in (-0.04, -0.02, -0.005, 0.0, 0.005, 0.02, 0.04)]
    for sessions, days in ((1, 1), (3, 5)):
        one_by_one = [core.breach_probability(daily, spot, k, sessions, days) for k in strikes]
        fresh = VolatilityCore(core.params)
        assert fresh.breach_probabilities(daily, spot, strikes, sessions, days) == one_by_one
        assert core.breach_probabilities(daily, spot, strikes, sessions, days) == one_by_one
    moved = {**daily, "ret_1": daily["ret_1"] - 0.01}  # another row: m is not reused
    assert core.log_vol(moved) != core.log_vol(daily)
    assert core.log_vol(moved) == VolatilityCore(core.params).log_vol(moved)


def test_move_is_the_fitted_blend_of_the_core_and_vix_and_the_distributions_mean(
    core: VolatilityCore,
) -> None:
    """The move scale is w_core * exp(m) * sqrt(n/252) + w_vix * VIX/100 * sqrt(T/365) with
    weights fitted on the window, and the move is that scale times the calibration sample's
    mean |u|: refitting the same window gives the same weights, a cut window other ones."""
    data = short_data()
    blend = core.params["move_blend"]
    assert blend == fit_core(VolTargets.of(data))["move_blend"]
    assert blend != fit_core(VolTargets.of(TrainingData(data.frame.iloc[:600])))["move_blend"]
    assert blend["core"] + blend["vix"] > 0
    daily = {k: float(v) for k, v in data.features.iloc[-1].items()}
    sessions, days = 3.0, 5.0
    expected_scale = blend["core"] * core.sigma(daily) * math.sqrt(sessions / YEAR) + blend[
        "vix"
    ] * daily["vix"] / 100 * math.sqrt(days / 365)
    assert core.move_scale(daily, sessions, days) == pytest.approx(expected_scale)
    key = next(
        k
        for k in (f"{vix_regime(daily['vix'])}|{dte_bucket(days)}", vix_regime(daily["vix"]), "ALL")
        if k in core.params["move_abs_u"]
    )
    assert core.expected_abs_move(daily, sessions, days) == pytest.approx(
        expected_scale * core.params["move_abs_u"][key]
    )
    with pytest.raises(ValueError, match="vix"):
        core.move_scale({**daily, "vix": None}, sessions, days)


def test_trap_link_is_monotone_in_the_forecast_gap_and_fitted_on_the_event(
    core: VolatilityCore,
) -> None:
    """P(RV5 > VIX) rises with m - ln(VIX/100) (b > 0 on real history), and on the window it
    was fitted on its mean forecast matches the event's frequency (a logistic MLE with an
    intercept reproduces the base rate)."""
    assert core.params["trap_link"][1] > 0
    data = short_data()
    t = VolTargets.of(data)
    y = t.trap()
    rows = np.flatnonzero(np.isfinite(y) & np.isfinite(t.har_x).all(axis=1))
    p = np.array([core.trap_probability(d) for d in t.inputs(rows)])
    assert p.mean() == pytest.approx(y[rows].mean(), abs=1e-3)
    gaps = np.array([core.log_vol(d) - math.log(d["vix"] / 100) for d in t.inputs(rows)])
    order = np.argsort(gaps)
    assert np.all(np.diff(p[order]) >= -1e-12)
    assert p.min() < 0.5 * y[rows].mean() < 2 * y[rows].mean() < p.max()  # it discriminates


def test_a_core_without_the_link_or_blend_is_refused_with_a_clear_error(
    core: VolatilityCore,
) -> None:
    """Parameters written by older code (residual tables, no trap link, no move blend) are
    refused when the model is built, naming what is missing."""
    old = {k: v for k, v in core.params.items() if k not in ("trap_link", "move_blend")}
    with pytest.raises(ValueError, match=r"lack \['move_blend', 'trap_link'\]"):
        VolatilityCore({**old, "trap_residuals": {"ALL": [0.0] * 105}})


def test_trap_rises_after_a_fall_the_leverage_effect(core: VolatilityCore) -> None:
    daily = {k: float(v) for k, v in short_data().features.iloc[-1].items()}
    calm = {**daily, "ret_1": 0.005, "ret_5": 0.01, "ret_20": 0.02}
    fall = {**daily, "ret_1": -0.02, "ret_5": -0.05, "ret_20": -0.08}
    assert core.trap_probability(fall) > core.trap_probability(calm)
    assert core.log_vol(fall) > core.log_vol(calm)


def test_choice_ships_the_baseline_unless_the_model_wins() -> None:
    assert _choice("brier", 0.10, 0.12, True, 100, "trap")["live"] == "model"
    assert _choice("brier", 0.13, 0.12, True, 100, "trap")["live"] == "baseline"
    assert _choice("spearman_rv5", 0.4, 0.5, False, 100, "stress")["live"] == "baseline"
    won = _choice("mae", 0.009, 0.010, True, 100, "move")
    assert won["skill"] == pytest.approx(0.1) and "VIX" in won["baseline"]


def test_trained_seller_publishes_its_selection_per_signal() -> None:
    model = train_seller(short_data(), FAST)
    selection = model.params["selection"]
    assert set(selection) == set(SIGNALS)
    for row in selection.values():
        assert row["live"] in {"model", "baseline"} and row["samples"] > 50
        assert math.isfinite(row["model_score"]) and math.isfinite(row["baseline_score"])
    assert model.params["head_selection"]["live"] in {"har", "xgb"}


def _context(live: str) -> EngineContext:
    seller = loaded(trained_registry(), SellerModels)
    stats = loaded(trained_registry(), MeasuredStatistics)
    for row in seller.params["selection"].values():
        row["live"] = live
    return EngineContext(
        settings=Settings(),
        snapshot=daily_snapshot("2021-06-22"),  # a Tuesday: two sessions to expiry
        models=ModelBook(loaded={"seller": seller, "stats": stats}),
        sequence=None,
        daily_cache={},
    )


def test_engine_publishes_the_model_where_it_won_and_says_so() -> None:
    ctx = _context("model")
    trap, rng, breach = trap_group(ctx), safe_range_group(ctx, "NORMAL"), breach_group(ctx)
    assert trap.selection is not None and trap.selection.live == "model"
    assert trap.provenance.note is not None and "live=model" in trap.provenance.note
    assert trap.provenance.source == "model"
    upper_points = [p for p in breach.points if p.side == "above"]
    assert [p.probability for p in upper_points] == sorted(
        (p.probability for p in upper_points), reverse=True
    )
    assert rng.lower < ctx.snapshot.spot < rng.upper
    assert rng.provenance.source == "model"


def test_engine_falls_back_to_the_baseline_where_the_model_lost() -> None:
    ctx = _context("baseline")
    seller = ctx.models.loaded["seller"]
    trap, stress, breach = trap_group(ctx), stress_group(ctx), breach_group(ctx)
    assert trap.score == pytest.approx(seller.trap_base_rate(), abs=1e-4)
    assert trap.provenance.source == "formula"
    assert "live=baseline" in str(trap.provenance.note)
    assert stress.provenance.source == "formula"
    assert "lognormal" in str(breach.provenance.formula)
    rng = safe_range_group(ctx, "NORMAL")
    assert isinstance(rng.selection, Selection) and rng.selection.live == "baseline"


def test_a_boosted_head_round_trips_through_the_registry(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import services.trainer.seller as trainer_seller
    from services.trainer.pipeline import publish_models

    real = trainer_seller.compare_heads
    monkeypatch.setattr(trainer_seller, "compare_heads", lambda *a: {**real(*a), "live": "xgb"})
    data = short_data()
    model = trainer_seller.train_seller(data, FAST)
    assert HEAD_FILE in model.writers
    publish_models([model], data, FAST, tmp_path, bus=None)
    seller = loaded(tmp_path, SellerModels)
    daily: DailyFeatures = {k: float(v) for k, v in data.features.iloc[-1].items()}
    lower, upper = seller.range_bounds(daily, 15000.0, 0.9, 5, 3)
    assert seller.breach_probability(daily, 15000.0, upper, 5, 3) == pytest.approx(0.05)
    assert seller.breach_probability(daily, 15000.0, lower, 5, 3) == pytest.approx(0.05)
    assert 0 < seller.trap_probability(daily) < 1
    assert math.isfinite(seller.expected_abs_move(daily, 5, 3))


@pytest.mark.slow
def test_minute_realised_vol_tracks_close_to_close_on_real_bars() -> None:
    from services.trainer.data import load_bundled
    from services.trainer.vol_evaluation import minute_rv5
    from shared.models import labels

    data = load_bundled(PROJECT_ROOT / "data", "2023-01-31")
    rv = minute_rv5(data.minutes, data.frame).dropna()
    close_to_close = labels.forward_realized_vol(data.frame["close"], 5).reindex(rv.index)
    assert len(rv) > 400  # the 1-minute file covers 2021-01..2023-01
    assert 0.7 < rv.median() / close_to_close.median() < 1.4
    assert rv.corr(close_to_close) > 0.5


@pytest.mark.parametrize("live", ["model", "baseline"])
def test_theta_edge_takes_the_move_from_the_core_or_its_baseline(live: str) -> None:
    from services.buyer.compute import theta_edge
    from shared.signals.chain import StraddleMove

    ctx = _context(live)
    ctx.models.loaded["buyer"] = loaded(trained_registry(), BuyerModels)
    vix = ctx.snapshot.vix
    assert vix is not None
    edge = theta_edge(ctx, vix)
    assert f"live={live}" in str(edge.provenance.note)
    if live == "baseline":  # the VIX-implied move against itself: no edge either way
        assert edge.score == pytest.approx(0.5, abs=5e-3) and edge.label == "neutral"
        assert edge.provenance.source == "formula"
    else:
        assert edge.provenance.source == "model"
    tiny = StraddleMove(
        strike=25_000, call=0.5, put=0.5, move_points=1.0, move_pct=0.004, one_sd_points=1.0
    )
    chain = theta_edge(ctx, vix, tiny, "chain 15:25")
    assert chain.implied_basis == "atm_straddle" and chain.score > 0.9
    assert chain.implied_formula.endswith("(chain 15:25)")
