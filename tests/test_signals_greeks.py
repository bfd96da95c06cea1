"""Per-strike IVs and Black-76 Greeks of real chains against the reference library vollib
(``vollib.black``, Peter Jaeckel's "Let's be rational" solver, undiscounted with r = 0):
snapshots of data/nifty_option_chain_intraday_2026-01-22_2026-02-05.csv.gz and NSE's UDiFF
bhavcopies in tests/fixtures/nse. vollib's vega is per 1 vol point and its theta per calendar
day (/365), the units of ``greeks.py``; its gamma is per index point of F."""

from __future__ import annotations

import itertools
import math
from functools import cache
from pathlib import Path

import pytest
from vollib.black.greeks import analytical
from vollib.black.implied_volatility import implied_volatility

from services.ingest.sources.chain_file import ChainFileSource
from shared.contract.schemas import OptionChain, OptionQuote
from shared.market.chain_view import years_to_expiry
from shared.signals.chain import atm_iv, atm_ivs, chain_smile, delta_skew, smile_atm_iv
from shared.signals.greeks import (
    MIN_YEARS,
    ChainGreeks,
    IvFrom,
    SideGreeks,
    chain_greeks,
    chains_greeks,
)
from shared.signals.skew import SECONDS_PER_YEAR
from tests.test_chain_file import CHAIN_FILE

NSE = Path(__file__).parent / "fixtures" / "nse"
FIELDS = ("delta", "gamma_per_point", "vega_points_per_vol_point", "theta_points_per_day")
VOLLIB = {
    "delta": analytical.delta,
    "gamma_per_point": analytical.gamma,
    "vega_points_per_vol_point": analytical.vega,
    "theta_points_per_day": analytical.theta,
}


@cache
def intraday(step: int = 15) -> tuple[OptionChain, ...]:
    """Every ``step``-th of the 411 real intraday snapshots (all three expiries, expiry days
    up to the last minutes before 15:30 included)."""
    events = ChainFileSource(CHAIN_FILE).events()
    chains = [e for e in events if isinstance(e, OptionChain)]
    return tuple(itertools.islice(chains, 0, None, step))


@cache
def bhavcopy(day: str) -> tuple[OptionChain, ...]:
    """Every expiry of NSE's UDiFF F&O bhavcopy of ``day`` (close prices, 15:30 IST)."""
    events = ChainFileSource(NSE / f"nifty_fo_udiff_{day}.csv.gz").events()
    return tuple(sorted((e for e in events if isinstance(e, OptionChain)), key=lambda c: c.expiry))


def quote_at(chain: OptionChain, strike: float) -> OptionQuote:
    return next(q for q in chain.quotes if q.strike == strike)


def sides(g: ChainGreeks) -> tuple[tuple[str, SideGreeks], tuple[str, SideGreeks]]:
    return (("c", g.call), ("p", g.put))


def compare_with_vollib(chain: OptionChain, iv_from: IvFrom) -> int:
    """Asserts every valued leg of ``chain`` against vollib; returns how many were compared."""
    years = years_to_expiry(chain)
    g = chain_greeks(chain.quotes, chain.spot, years, iv_from)
    compared = 0
    for flag, side in sides(g):
        for i, strike in enumerate(g.strikes):
            iv = side.iv[i]
            if iv is None:
                assert side.reason[i] and all(getattr(side, f)[i] is None for f in FIELDS)
                continue
            assert side.reason[i] is None and not side.iv_published[i]  # no published IVs
            # the quote the IV was solved from: the out-of-the-money side, or the own side
            solved_from = ("c" if strike >= g.forward else "p") if iv_from == "otm" else flag
            q = quote_at(chain, strike)
            price = q.ce_ltp if solved_from == "c" else q.pe_ltp
            reference = implied_volatility(price, g.forward, strike, 0.0, years, solved_from)
            assert iv == pytest.approx(reference, abs=1e-6), (chain.expiry, strike, flag)
            for field in FIELDS:
                mine = getattr(side, field)[i]
                theirs = VOLLIB[field](flag, g.forward, strike, years, 0.0, iv)
                assert mine == pytest.approx(theirs, rel=1e-6, abs=1e-12), (field, strike, flag)
            compared += 1
    return compared


@pytest.mark.parametrize("iv_from", ["otm", "own"])
def test_ivs_and_greeks_equal_vollib_on_real_intraday_chains(iv_from: IvFrom) -> None:
    chains = intraday()
    compared = sum(compare_with_vollib(c, iv_from) for c in chains)
    assert {c.expiry for c in chains} == {"2026-01-27", "2026-02-03", "2026-02-10"}
    assert compared > (2_500 if iv_from == "otm" else 4_000)


@pytest.mark.parametrize("iv_from", ["otm", "own"])
def test_ivs_and_greeks_equal_vollib_on_a_bhavcopy_day(iv_from: IvFrom) -> None:
    # 18 expiries from 5 days to 5 years out, close prices of 2026-01-22
    chains = [c for c in bhavcopy("2026-01-22") if years_to_expiry(c) > 0]
    assert len(chains) == 18
    assert sum(compare_with_vollib(c, iv_from) for c in chains) > 1_000


def test_batched_chains_equal_one_by_one() -> None:
    chains = bhavcopy("2026-01-22")[:3]
    args = [(tuple(list(c.quotes)), c.spot, years_to_expiry(c)) for c in chains]  # new: no memo
    batched = chains_greeks(args)
    alone = [chain_greeks(tuple(list(q)), s, y) for q, s, y in args]  # new objects again
    assert batched[0] is not alone[0]
    for one, other in zip(batched, alone, strict=True):
        # the solver stops once every option of the batch moves < 1e-8 in vol: equal to that
        assert (one.strikes, one.forward, one.years) == (other.strikes, other.forward, other.years)
        for (_, a), (_, b) in zip(sides(one), sides(other), strict=True):
            assert a.reason == b.reason and a.iv_published == b.iv_published
            for field in ("iv", *FIELDS):
                for x, y in zip(getattr(a, field), getattr(b, field), strict=True):
                    assert x == pytest.approx(y, rel=1e-6, abs=1e-8)


def test_no_nan_anywhere_only_values_or_none_with_a_reason() -> None:
    for chain in intraday()[:10] + bhavcopy("2026-01-22")[:4]:
        for iv_from in ("otm", "own"):
            g = chain_greeks(chain.quotes, chain.spot, years_to_expiry(chain), iv_from)
            for _, side in sides(g):
                for i in range(len(g.strikes)):
                    values = [side.iv[i]] + [getattr(side, f)[i] for f in FIELDS]
                    if side.reason[i] is None:
                        assert all(v is not None and math.isfinite(v) for v in values)
                    else:
                        assert all(v is None for v in values)


def test_a_stale_deep_itm_call_below_intrinsic_has_no_iv() -> None:
    """First snapshot (2026-01-22 09:39:45, spot 25403.6): the 23500 call last traded at
    1679.95, below its intrinsic value on the parity forward 25419.25 (1919.25)."""
    chain = intraday()[0]
    years = years_to_expiry(chain)
    own = chain_greeks(chain.quotes, chain.spot, years, "own")
    i = own.strikes.index(23500.0)
    assert own.forward == 25419.25
    assert own.call.iv[i] is None and own.call.delta[i] is None
    assert own.call.reason[i] == ("call LTP 1679.95 at or below intrinsic 1919.25 on F 25419.25")
    with pytest.raises(Exception, match="intrinsic"):  # vollib refuses it too
        implied_volatility(1679.95, own.forward, 23500.0, 0.0, years, "c")
    # the put of that strike is out of the money and priced: 'otm' values both sides with it
    otm = chain_greeks(chain.quotes, chain.spot, years, "otm")
    assert otm.call.iv[i] == otm.put.iv[i] == own.put.iv[i] is not None
    put_delta = otm.put.delta[i]
    assert put_delta is not None
    assert otm.call.delta[i] == pytest.approx(1 + put_delta, abs=1e-15)


def test_zero_or_missing_prices_have_no_iv() -> None:
    chain = intraday()[0]
    years = years_to_expiry(chain)
    # the real file's 23400 call has LTP 0.0 (no trade): no value, not a zero-vol option
    own = chain_greeks(chain.quotes, chain.spot, years, "own")
    i = own.strikes.index(23400.0)
    assert quote_at(chain, 23400.0).ce_ltp is None  # the loader reads 0.0 as "no price"
    assert own.call.iv[i] is None
    assert own.call.reason[i] == "no call price (zero or missing LTP) and no published IV"
    # an out-of-the-money put with a zero price: both sides of its strike have no Greeks
    quotes = tuple(
        q.model_copy(update={"pe_ltp": 0.0}) if q.strike == 25000 else q for q in chain.quotes
    )
    otm = chain_greeks(quotes, chain.spot, years)
    j = otm.strikes.index(25000.0)
    assert otm.call.gamma_per_point[j] is None and otm.put.gamma_per_point[j] is None
    assert otm.put.reason[j] == "no put price (zero or missing LTP) and no published IV"


def test_unsolvable_prices_have_a_reason() -> None:
    chain = intraday()[0]
    years = years_to_expiry(chain)
    # a call dearer than the forward itself, and a far out-of-the-money call dearer than
    # Black-76 at 500% vol (about 5,100 at K 28000, F 25419.25, 5.25 days)
    # and a deep in-the-money put 0.02 over its intrinsic value (an IV of almost anything
    # prices it within a tick)
    quotes = tuple(
        q.model_copy(
            update={"ce_ltp": 30_000.0 if q.strike == 25600 else 20_000.0, "pe_ltp": 2580.77}
        )
        if q.strike in (25600, 28000)
        else q
        for q in chain.quotes
    )
    g = chain_greeks(quotes, chain.spot, years, "own")
    assert g.forward == 25419.25
    assert g.call.reason[g.strikes.index(25600.0)] == (
        "call LTP 30000.00 at or above the no-arbitrage maximum 25419.25"
    )
    assert g.put.reason[g.strikes.index(28000.0)] == (
        "put LTP 2580.77 less than one tick (0.05) above intrinsic 2580.75 on F 25419.25: "
        "IV undetermined"
    )
    assert g.call.reason[g.strikes.index(28000.0)] == (
        "no IV in [0.0001, 5.0] reprices the call LTP 20000.00 (time value 20000.00 on F 25419.25)"
    )


def test_expiry_day_after_the_close_and_in_the_last_minute() -> None:
    """NSE's bhavcopy of 2026-01-27 is taken at 15:30 of that weekly's expiry day."""
    expiring = bhavcopy("2026-01-27")[0]
    assert expiring.expiry == "2026-01-27" and years_to_expiry(expiring) == 0
    g = chain_greeks(expiring.quotes, expiring.spot, 0.0)
    assert g.reason == "expired: at or past the expiry's 15:30 IST close, no time value left"
    assert set(g.call.iv) == set(g.put.delta) == {None}
    assert set(g.call.reason) == {g.reason}
    last = chain_greeks(expiring.quotes, expiring.spot, 30 / SECONDS_PER_YEAR)
    assert 30 / SECONDS_PER_YEAR < MIN_YEARS
    assert last.reason is not None and last.reason.startswith("expiry day: 30 s to the 15:30")
    assert set(last.put.gamma_per_point) == {None}
    assert atm_iv(expiring.quotes, expiring.spot, 30 / SECONDS_PER_YEAR) is None


def test_published_iv_is_used_only_when_the_ltp_agrees() -> None:
    chain = intraday()[0]
    years = years_to_expiry(chain)
    plain = chain_greeks(chain.quotes, chain.spot, years)
    i = plain.strikes.index(25300.0)  # below F: the put is the out-of-the-money side
    solved = plain.put.iv[i]
    assert solved is not None
    close, far = solved + 0.004, solved + 0.006  # 0.4 and 0.6 vol point off the LTP's IV
    for published, used in ((close, True), (far, False)):
        quotes = tuple(
            q.model_copy(update={"pe_iv": published}) if q.strike == 25300 else q
            for q in chain.quotes
        )
        g = chain_greeks(quotes, chain.spot, years)
        assert g.put.iv_published[i] is used
        assert g.put.iv[i] == (published if used else solved)
        iv = g.put.iv[i]
        assert iv is not None
        gamma = analytical.gamma("p", g.forward, 25300.0, years, 0.0, iv)
        assert g.put.gamma_per_point[i] == pytest.approx(gamma, rel=1e-9)
    # with no LTP at all the published IV is taken as it is
    quotes = tuple(
        q.model_copy(update={"pe_iv": far, "pe_ltp": None}) if q.strike == 25300 else q
        for q in chain.quotes
    )
    assert chain_greeks(quotes, chain.spot, years).put.iv[i] == far


def test_one_atm_iv_whatever_the_in_the_money_quotes_say() -> None:
    """The issue: one chain showed two ATM IVs because an in-the-money call's IV was
    averaged in on one tile. The ATM IV reads out-of-the-money quotes only, and the delta
    skew tile reports the same number."""
    chain = intraday()[0]
    years = years_to_expiry(chain)
    atm = atm_iv(chain.quotes, chain.spot, years)
    smile = chain_smile(chain.quotes, chain.spot, years)
    assert smile is not None and atm is not None
    skew = delta_skew(smile, years)
    assert skew is not None and skew.atm_iv == atm
    # between the 25400 put and the 25450 call, interpolated at F = 25419.25
    g = chain_greeks(chain.quotes, chain.spot, years)
    put, call = g.put.iv[g.strikes.index(25400.0)], g.call.iv[g.strikes.index(25450.0)]
    assert put is not None and call is not None
    assert atm == round(put + (call - put) * (25419.25 - 25400) / 50, 6)
    # a stale in-the-money call at 25400 (the 2026 file has the ITM side stale often)
    stale = tuple(
        q.model_copy(update={"ce_ltp": 40.0}) if q.strike == 25400 else q for q in chain.quotes
    )
    assert atm_iv(stale, chain.spot, years) == atm


def test_the_batched_atm_iv_history_equals_the_smile_of_every_chain() -> None:
    """``atm_ivs`` (a restarted engine's history) values only the strikes around F; it must
    give what the smile tile gives, chain by chain: all 411 intraday snapshots, both
    bhavcopy days' expiries (including the expired one)."""
    chains = list(intraday(1)) + list(bhavcopy("2026-01-22")) + list(bhavcopy("2026-01-27"))
    args = [(c.quotes, c.spot, years_to_expiry(c)) for c in chains]
    batched = atm_ivs(args)
    one_by_one = []
    for quotes, spot, years in args:
        smile = chain_smile(quotes, spot, years)
        one_by_one.append(None if smile is None else smile_atm_iv(smile))
    assert batched == one_by_one
    assert sum(v is not None for v in batched) > 400 and batched[-18] is None  # expired
