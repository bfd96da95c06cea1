"""OI build-up on NSE's UDiFF bhavcopies of 2026-01-22 and 2026-01-23 (tests/fixtures/nse)
against a plain loop over the raw CSV rows written here."""

from __future__ import annotations

import csv
import gzip
from collections.abc import Sequence
from functools import cache

import pytest

from shared.contract.schemas import OptionQuote
from shared.signals.buildup import (
    Buildup,
    ChainBuildup,
    buildup_between,
    buildup_since_close,
    classify_buildup,
    future_buildup,
)
from tests.test_signals_greeks import NSE, bhavcopy

EXPIRY = "2026-02-03"


@cache
def raw(day: str) -> tuple[dict[str, str], ...]:
    with gzip.open(NSE / f"nifty_fo_udiff_{day}.csv.gz", "rt", newline="") as handle:
        return tuple(csv.DictReader(handle))


def legs(day: str) -> dict[tuple[float, str], dict[str, str]]:
    """(strike, 'CE'/'PE') -> row, NIFTY options of ``EXPIRY``."""
    return {
        (float(r["StrkPric"]), r["OptnTp"]): r
        for r in raw(day)
        if r["FinInstrmTp"] == "IDO" and r["FininstrmActlXpryDt"] == EXPIRY
    }


def by_hand(price_change: float, oi_change: float) -> Buildup:
    if price_change > 0 and oi_change > 0:
        return Buildup.LONG_BUILDUP
    if price_change < 0 and oi_change > 0:
        return Buildup.SHORT_BUILDUP
    if price_change > 0 and oi_change < 0:
        return Buildup.SHORT_COVERING
    if price_change < 0 and oi_change < 0:
        return Buildup.LONG_UNWINDING
    return Buildup.NEUTRAL


def test_the_four_quadrants_and_neutral() -> None:
    assert classify_buildup(5.0, 650.0) is Buildup.LONG_BUILDUP
    assert classify_buildup(-5.0, 650.0) is Buildup.SHORT_BUILDUP
    assert classify_buildup(5.0, -650.0) is Buildup.SHORT_COVERING
    assert classify_buildup(-5.0, -650.0) is Buildup.LONG_UNWINDING
    assert classify_buildup(0.0, 650.0) is Buildup.NEUTRAL
    assert classify_buildup(-5.0, 0.0) is Buildup.NEUTRAL
    # below a threshold a change counts as none
    assert classify_buildup(0.05, 650.0, min_price_change=0.05) is Buildup.NEUTRAL
    assert classify_buildup(0.1, 650.0, min_price_change=0.05) is Buildup.LONG_BUILDUP
    assert classify_buildup(0.1, 650.0, min_oi_change=650.0) is Buildup.NEUTRAL


def chain_of(day: str) -> Sequence[OptionQuote]:
    (chain,) = [c for c in bhavcopy(day) if c.expiry == EXPIRY]
    return chain.quotes


def assert_matches_loop(
    result: ChainBuildup, loop: dict[tuple[float, str], tuple[float, float] | None]
) -> int:
    labelled = 0
    for side, option in ((result.call, "CE"), (result.put, "PE")):
        for i, strike in enumerate(result.strikes):
            expected = loop.get((strike, option))
            if expected is None:
                assert side.buildup[i] is None and side.reason[i]
                continue
            dp, doi = expected
            assert side.buildup[i] is by_hand(dp, doi), (strike, option)
            assert side.price_change_points[i] == pytest.approx(dp, abs=1e-9)
            assert side.oi_change_units[i] == doi and side.reason[i] is None
            labelled += 1
    return labelled


def test_between_two_days_equals_a_loop_over_the_raw_rows() -> None:
    before, now = legs("2026-01-22"), legs("2026-01-23")
    loop: dict[tuple[float, str], tuple[float, float] | None] = {}
    for key, row in now.items():
        old = before.get(key)
        price, old_price = float(row["ClsPric"]), float(old["ClsPric"]) if old else 0.0
        if old is None or price <= 0 or old_price <= 0:
            continue
        loop[key] = (price - old_price, float(row["OpnIntrst"]) - float(old["OpnIntrst"]))
    result = buildup_between(chain_of("2026-01-23"), chain_of("2026-01-22"))
    assert result.basis == "snapshots"
    assert assert_matches_loop(result, loop) > 150
    # the day NIFTY fell 1.1%: puts were bought and calls written at the money
    kinds = {b for b in result.put.buildup + result.call.buildup if b is not None}
    assert {Buildup.LONG_BUILDUP, Buildup.SHORT_BUILDUP} <= kinds


def test_since_the_close_uses_the_published_oi_change_and_equals_the_loop() -> None:
    now = legs("2026-01-23")
    closes: dict[str, dict[float, float]] = {"CE": {}, "PE": {}}
    loop: dict[tuple[float, str], tuple[float, float] | None] = {}
    for (strike, option), row in now.items():
        closes[option][strike] = float(row["PrvsClsgPric"])
        price, prev = float(row["ClsPric"]), float(row["PrvsClsgPric"])
        if price > 0 and prev > 0:
            loop[(strike, option)] = (price - prev, float(row["ChngInOpnIntrst"]))
    quotes = chain_of("2026-01-23")
    result = buildup_since_close(quotes, closes["CE"], closes["PE"])
    assert result.basis == "previous_close"
    assert assert_matches_loop(result, loop) > 150
    # the published change and previous close are the day before's OI and close: both ways
    # of measuring agree wherever both are defined
    between = buildup_between(quotes, chain_of("2026-01-22"))
    both = [
        (x, y)
        for a, b in ((result.call, between.call), (result.put, between.put))
        for x, y in zip(a.buildup, b.buildup, strict=True)
        if x is not None and y is not None
    ]
    assert len(both) > 150 and all(x is y for x, y in both)


def test_a_strike_missing_before_or_unpriced_has_no_buildup() -> None:
    now = (
        OptionQuote(strike=25000, ce_ltp=100.0, ce_oi=1300.0, pe_ltp=50.0, pe_oi=650.0),
        OptionQuote(strike=25100, ce_ltp=60.0, ce_oi=650.0, pe_ltp=None, pe_oi=650.0),
    )
    before = (OptionQuote(strike=25100, ce_ltp=70.0, ce_oi=1300.0, pe_ltp=80.0, pe_oi=0.0),)
    result = buildup_between(now, before)
    assert result.call.buildup == (None, Buildup.LONG_UNWINDING)
    assert result.put.buildup == (None, None)
    assert result.call.reason[0] is not None and "earlier" in result.call.reason[0]
    assert result.put.reason[1] is not None and result.put.reason[1].startswith("put: no LTP")
    assert result.call.oi_change_units == (None, -650.0)
    assert result.put.oi_change_units == (None, 650.0)  # OI known even without a price


def futures(day: str) -> list[dict[str, str]]:
    rows = [r for r in raw(day) if r["FinInstrmTp"] == "IDF"]
    return sorted(rows, key=lambda r: r["FininstrmActlXpryDt"])


def test_near_month_future_buildup_from_the_bhavcopy() -> None:
    """2026-01-23: the January future fell 270 points and lost 2.9 million units of OI
    (longs unwinding, rolling out); the February future fell and gained OI (short build-up)."""
    previous = {r["FininstrmActlXpryDt"]: r for r in futures("2026-01-22")}
    seen = []
    for row in futures("2026-01-23"):
        price, prev_price = float(row["ClsPric"]), float(row["PrvsClsgPric"])
        oi = float(row["OpnIntrst"])
        prev_oi = oi - float(row["ChngInOpnIntrst"])
        # the published change is the change since the previous day's file
        assert prev_oi == float(previous[row["FininstrmActlXpryDt"]]["OpnIntrst"])
        result = future_buildup(price, prev_price, oi, prev_oi)
        assert result is by_hand(price - prev_price, oi - prev_oi)
        seen.append(result)
    assert seen[:2] == [Buildup.LONG_UNWINDING, Buildup.SHORT_BUILDUP]
    near = futures("2026-01-23")[0]
    assert (near["FininstrmActlXpryDt"], near["ClsPric"], near["PrvsClsgPric"]) == (
        "2026-01-27",
        "25079.80",
        "25349.80",
    )
