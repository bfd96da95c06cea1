"""Chain analytics against values computed by hand on a real chain: seven strikes around the
money of the NIFTY 2026-01-27 weekly at 2026-01-22 09:39:45 IST (spot 25403.6), from
data/nifty_option_chain_intraday_2026-01-22_2026-02-05.csv.gz (OI and volume in units)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from shared.contract.schemas import OptionQuote
from shared.signals.chain import (
    Smile,
    SmilePoint,
    atm_iv,
    atm_ivs,
    chain_smile,
    delta_skew,
    oi_walls,
    percentile_rank,
    put_call_ratio,
    straddle_band,
    straddle_move,
)
from shared.signals.max_pain import compute_max_pain
from shared.signals.skew import black76_price

SPOT = 25403.6
# strike, ce_ltp, ce_oi, ce_volume, pe_ltp, pe_oi, pe_volume
ROWS = [
    (25250, 254.75, 1611090, 9247810, 86.6, 3013400, 12189645),
    (25300, 218.5, 5630495, 39825045, 99.0, 8466315, 32872255),
    (25350, 184.35, 3339115, 34721310, 115.1, 4057235, 19860035),
    (25400, 152.65, 7075250, 45071715, 135.0, 5553405, 18395000),
    (25450, 126.25, 3579420, 28164110, 157.0, 1449045, 5092620),
    (25500, 103.0, 11472695, 42204500, 183.2, 4839705, 6629220),
    (25550, 83.45, 2931630, 17063930, 214.2, 405340, 902200),
]
QUOTES = [
    OptionQuote(strike=k, ce_ltp=cl, ce_oi=co, ce_volume=cv, pe_ltp=pl, pe_oi=po, pe_volume=pv)
    for k, cl, co, cv, pl, po, pv in ROWS
]
YEARS = (5 * 86400 + 6 * 3600) / (365 * 86400)  # 2026-01-22 09:40 -> 2026-01-27 15:30, about


def test_put_call_ratio_by_hand() -> None:
    pcr = put_call_ratio(QUOTES, SPOT, near=0.003)
    # sum pe_oi = 27,784,445; sum ce_oi = 35,639,695
    assert pcr.oi == pytest.approx(27_784_445 / 35_639_695, abs=1e-4) == 0.7796
    # sum pe_volume = 95,940,975; sum ce_volume = 216,298,420
    assert pcr.volume == 0.4436
    # within 0.3% of 25403.6: 25350, 25400, 25450
    #   -> (4057235+5553405+1449045)/(3339115+7075250+3579420)
    assert pcr.near_strikes == 3
    assert pcr.oi_near_atm == round(11_059_685 / 13_993_785, 4) == 0.7903


def test_pcr_without_volume_or_call_oi_is_none_not_zero() -> None:
    pcr = put_call_ratio([OptionQuote(strike=25400, pe_oi=100)], SPOT)
    assert pcr.oi is None and pcr.volume is None


def test_oi_walls_and_their_change_by_hand() -> None:
    previous = [q.model_copy(update={"ce_oi": q.ce_oi - 1000}) for q in QUOTES[:-1]]
    calls, puts = oi_walls(QUOTES, SPOT, previous, count=2)
    assert [(w.strike, w.oi) for w in calls] == [(25500, 11472695), (25450, 3579420)]
    assert [(w.strike, w.oi) for w in puts] == [(25300, 8466315), (25400, 5553405)]
    assert calls[0].change_since_previous == 1000 and calls[0].distance_points == 96.4
    assert puts[0].change_since_previous == 0
    _, puts_alone = oi_walls(QUOTES, SPOT, None, count=1)
    assert puts_alone[0].change_since_previous is None
    # a strike missing from the previous snapshot has no change, not a made-up one
    calls3, _ = oi_walls(QUOTES, SPOT, previous, count=3)
    assert calls3[2].strike == 25550 and calls3[2].change_since_previous is None


def test_max_pain_on_the_real_strikes_by_hand() -> None:
    # writers' payout at 25400 = 1611090*150 + 5630495*100 + 3339115*50
    #   + 1449045*50 + 4839705*100 + 405340*150 = 1,588,892,500 (the minimum; 25350: 1,672,232,250)
    result = compute_max_pain(QUOTES, tolerance=0.02)
    assert result is not None
    assert (result.strike, result.payout) == (25400, 1_588_892_500)
    assert (result.lower, result.upper) == (25400, 25400)


def test_straddle_move_by_hand() -> None:
    # parity forward: min |C-P| at 25400 (17.65) -> F = 25417.65, nearest strike 25400
    move = straddle_move(QUOTES, SPOT)
    assert move is not None
    assert (move.strike, move.call, move.put) == (25400, 152.65, 135.0)
    assert move.move_points == 287.65
    assert move.move_pct == round(287.65 / SPOT, 6)
    assert move.one_sd_points == round(287.65 / math.sqrt(2 / math.pi), 2) == 360.52


def test_the_straddle_band_holds_the_coverage_of_its_lognormal() -> None:
    lower, upper = straddle_band(SPOT, 360.52, z=1.6448536269514722)  # 90 %
    sigma = 360.52 / SPOT  # sigma * sqrt(T) the straddle prices
    inside = norm.cdf(math.log(upper / SPOT) / sigma) - norm.cdf(math.log(lower / SPOT) / sigma)
    assert inside == pytest.approx(0.90, abs=1e-4)
    assert math.log(upper / SPOT) == pytest.approx(-math.log(lower / SPOT), abs=1e-6)


def test_straddle_refuses_an_unpriced_atm_strike() -> None:
    quotes = [q.model_copy(update={"pe_ltp": None}) if q.strike == 25400 else q for q in QUOTES]
    assert straddle_move(quotes, SPOT) is None


def test_smile_uses_published_iv_first_and_implies_the_rest() -> None:
    quotes = [q.model_copy(update={"pe_iv": 0.123}) if q.strike == 25300 else q for q in QUOTES]
    smile = chain_smile(quotes, SPOT, YEARS)
    # the parity forward is the median of K + C - P at the 3 strikes nearest the min |C - P|
    # strike 25400: 25350 + 184.35 - 115.1, 25400 + 152.65 - 135.0, 25450 + 126.25 - 157.0
    #   = 25419.25, 25417.65, 25419.25 -> 25419.25
    assert smile is not None and smile.forward_from_parity and smile.forward == 25419.25
    by_strike = {p.strike: p for p in smile.points}
    assert by_strike[25300].iv == 0.123 and by_strike[25300].published
    assert by_strike[25300].side == "put" and by_strike[25450].side == "call"
    # each implied IV reprices its own out-of-the-money LTP
    for p in smile.points:
        if p.published:
            continue
        row = next(r for r in ROWS if r[0] == p.strike)
        price = row[1] if p.side == "call" else row[4]
        repriced = black76_price(
            smile.forward,
            np.array([p.strike]),
            YEARS,
            np.array([p.iv]),
            np.array([p.side == "call"]),
        )[0]
        assert repriced == pytest.approx(price, abs=0.01)
    assert all(0.05 < p.iv < 0.4 for p in smile.points)


def test_delta_skew_picks_the_25_delta_wings() -> None:
    f, years = 25000.0, 7 / 365
    points = []
    for k in range(23500, 26550, 50):
        iv = 0.14 + 0.4 * max(0.0, math.log(f / k))  # a put-side skew
        points.append(SmilePoint(k, math.log(k / f), iv, "call" if k >= f else "put", True))
    skew = delta_skew(Smile.from_points(f, True, points), years)
    assert skew is not None and skew.atm_iv == 0.14
    # 25-delta call: N(d1) = 0.25 -> d1 = -0.674; with iv 0.14 over 7 days sd = 0.01939,
    # ln(F/K) = -0.674*0.01939 - sd^2/2 -> K = 25000*exp(0.013265) = 25333.8 -> strike 25350
    assert skew.call_strike == 25350 and skew.call_iv == 0.14
    assert skew.put_strike < f and skew.put_iv > skew.call_iv
    assert skew.risk_reversal == round(skew.put_iv - skew.call_iv, 6) > 0


def test_atm_iv_and_percentile() -> None:
    # one strike, 25400 < F = 25400 + 152.65 - 135.0 = 25417.65: its out-of-the-money side is
    # the put, so the ATM IV is the put's published 0.12 (within 0.5 vol point of the 0.118165
    # its LTP implies on that F); the in-the-money call's IV is not averaged in
    one = [QUOTES[3].model_copy(update={"ce_iv": 0.1, "pe_iv": 0.12})]
    assert atm_iv(one, SPOT, YEARS) == 0.12
    # a published IV the LTP contradicts (0.2 vs 0.118165) is not used: the LTP's IV is
    far_off = [QUOTES[3].model_copy(update={"pe_iv": 0.2})]
    assert atm_iv(far_off, SPOT, YEARS) == atm_iv(QUOTES[3:4], SPOT, YEARS) == 0.118165
    implied = atm_iv(QUOTES, SPOT, YEARS)
    # between the 25400 put (0.118793) and the 25450 call (0.115941) at F = 25419.25
    assert implied == round(0.118793 + (0.115941 - 0.118793) * 19.25 / 50, 6) == 0.117695
    # one ATM IV: the delta-skew tile reports the same number
    smile = chain_smile(QUOTES, SPOT, YEARS)
    assert smile is not None
    skew = delta_skew(smile, YEARS)
    assert skew is not None and skew.atm_iv == implied
    assert percentile_rank([0.1, 0.12, 0.14, 0.16], 0.13) == 0.5
    assert percentile_rank([], 0.13) is None


def test_batched_atm_ivs_match_one_by_one() -> None:
    variants = [
        (QUOTES, SPOT, YEARS),
        (QUOTES, SPOT, YEARS * 2),
        ([q.model_copy(update={"ce_iv": 0.2}) for q in QUOTES], SPOT, YEARS),
        (QUOTES, SPOT, 0.0),
        ([q.model_copy(update={"ce_iv": 0.116}) for q in QUOTES], SPOT, YEARS),
    ]
    batched = atm_ivs(variants)
    assert batched == [atm_iv(*v) for v in variants]
    assert batched[3] is None and batched[1] != batched[0]
    # call IVs of 0.2 contradict the call LTPs (about 0.115): not used
    assert batched[2] == batched[0]
    # 0.116 agrees with the 25450 call's LTP (0.115941): used, between the put and that call
    assert batched[4] == round(0.118793 + (0.116 - 0.118793) * 19.25 / 50, 6)
