"""The pure formulas: safe range, breach grid, implied vol, skew, labels, regimes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shared.signals import fallbacks, labels, regimes
from shared.signals.breach import breach_strikes, lognormal_breach_probability
from shared.signals.forward import parity_forward
from shared.signals.safe_range import implied_move_points, safe_range, symmetric_normal_z
from shared.signals.skew import (
    black76_price,
    chain_skew,
    implied_vol,
    return_distribution_skew,
)
from tests.engines_support import chains, daily_snapshot


def test_safe_range_formula_and_separate_z() -> None:
    lower, upper = safe_range(25000, 14, 7, 1.8, 1.2)
    scale = 0.14 * math.sqrt(7 / 365)
    assert lower == pytest.approx(25000 * math.exp(-1.8 * scale))
    assert upper == pytest.approx(25000 * math.exp(1.2 * scale))
    assert implied_move_points(25000, 14, 7) == pytest.approx(25000 * scale)
    assert symmetric_normal_z(0.90) == pytest.approx(1.6449, abs=1e-4)


def test_breach_grid_is_50_point_strikes_half_to_three_percent() -> None:
    spot = 25123.4
    grid = breach_strikes(spot)
    assert len(grid) == 12
    for point in grid:
        assert point.strike % 50 == 0
        assert 0.3 <= point.distance_pct <= 3.2
        assert (point.strike > spot) == (point.side == "above")
    probs = [lognormal_breach_probability(spot, p.strike, 14, 5) for p in grid if p.side == "above"]
    assert probs == sorted(probs, reverse=True)  # farther strikes breach less often


def test_implied_vol_round_trip() -> None:
    strikes = np.array([24000.0, 25000.0, 26000.0])
    is_call = np.array([False, True, True])
    vols = np.array([0.18, 0.12, 0.10])
    prices = black76_price(25000.0, strikes, 7 / 365, vols, is_call)
    assert implied_vol(prices, 25000.0, strikes, 7 / 365, is_call) == pytest.approx(vols, abs=1e-6)


def test_chain_skew_on_real_chain_shows_put_skew() -> None:
    chain = chains(limit=1)[0]
    forward = parity_forward(chain.quotes, chain.spot)
    assert forward is not None and abs(forward / chain.spot - 1) < 0.01
    skew = chain_skew(chain.quotes, chain.spot, years_to_expiry=4.5 / 365)
    assert skew is not None and skew.atm_iv is not None and 0.03 < skew.atm_iv < 0.5
    assert skew.put is not None and skew.call is not None
    assert skew.put > skew.call  # index options: OTM puts carry the richer vol


def test_return_distribution_skew_signs() -> None:
    falls = [-0.02, 0.005, 0.004, 0.006] * 10
    skew = return_distribution_skew(falls)
    assert skew is not None and skew.put > 0 > skew.call and skew.net > 0


def test_labels() -> None:
    assert labels.trap_label(0.1) == "LOW" and labels.trap_label(0.9) == "HIGH"
    assert labels.stress_score({"low": 0.2, "medium": 0.4, "high": 0.4}) == pytest.approx(0.6)
    assert labels.stress_label(0.8) == "STRESS"
    assert labels.direction_call({"up": 0.4, "neutral": 0.2, "down": 0.4})[0] == "NEUTRAL"
    assert labels.direction_call({"up": 0.5, "neutral": 0.2, "down": 0.3}) == ("UP", 0.5)
    score, label = labels.theta_edge(200, 100)
    assert score > 0.55 and label == "edge justifies premium"
    assert labels.theta_edge(20, 100)[1] == "don't waste premium"
    flag, reasons = labels.seller_flag("HIGH", "CALM", 0.5, 0.4)
    assert flag == "RISKY" and reasons
    assert labels.seller_flag("LOW", "CALM", 0.7, 0.3)[0] == "FAVOURABLE"
    env, text = labels.environment("neutral", 0.5, 0.4)
    assert env == "cautious" and "should" not in text.lower() and "buy" not in text.lower()


def test_risk_score_and_regimes_follow_features() -> None:
    calm, crash = daily_snapshot("2019-12-20").daily, daily_snapshot("2020-03-23").daily
    assert labels.risk_score(crash, 0.4)[0] > labels.risk_score(calm, 0.2)[0]
    assert regimes.market_regime(crash) == "HIGH_VOLATILITY"
    # 2019-12-20: trend efficiency 0.29 < 1/3 and inside the bands; 2020-03-23: 0.67
    assert regimes.buyer_regime(calm) == "CHOPPY"
    assert regimes.buyer_regime(crash) == "TREND_FOLLOWING"
    assert regimes.market_regime(calm) == "RANGE_BOUND"
    assert (
        regimes.buyer_regime({"trend_strength_20": 0.1, "bollinger_b_20": 1.2}) == "MEAN_REVERTING"
    )
    rw = fallbacks.random_walk_direction(calm, 5)
    assert sum(rw[k] for k in ("up", "neutral", "down")) == pytest.approx(1)
