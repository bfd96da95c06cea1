"""FII positioning from participant-wise OI: nets, day change, 5-record trend and slope,
and the index-futures long share when NSE's long/short counts are at hand."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from services.ingest.sources.participant_oi import load_participant_oi
from shared.signals.positioning import TREND_SESSIONS, positioning
from tests.conftest import DATA_DIR

NSE = Path(__file__).parent / "fixtures" / "nse"
HISTORY = load_participant_oi(DATA_DIR / "nse_participant_oi_daily_2024-09_2026-02.csv")
RAW = load_participant_oi(NSE)  # 2026-02-04 .. 2026-02-06, with long/short


def test_history_positioning_matches_a_direct_computation() -> None:
    result = positioning(HISTORY)
    futures = [d.fii.index_future_net for d in HISTORY]
    options = [d.fii.index_call_net - d.fii.index_put_net for d in HISTORY]
    assert result.as_of == "2026-02-06" and result.previous == "2026-02-05"
    assert result.trend_from == HISTORY[-1 - TREND_SESSIONS].day.isoformat()
    assert result.index_futures is not None and result.index_options is not None
    assert result.index_futures.value == -150250
    assert result.index_futures.change == -150250 - (-144022)
    assert result.index_options.value == -347604
    assert result.index_options.change == -347604 - (-366606)
    assert result.index_futures.trend == futures[-1] - futures[-6]
    assert result.index_options.trend == options[-1] - options[-6]
    slope = np.polyfit(np.arange(6), np.array(futures[-6:], dtype=float), 1)[0]
    assert result.index_futures.slope == pytest.approx(slope, abs=0.01)
    assert result.index_futures.slope_sign == int(np.sign(slope))
    # history rows carry nets only: no long/short ratio, and the reason says so
    assert result.futures_long_ratio is None
    assert any("nets only" in r for r in result.reasons)
    assert "least-squares slope of the last 5+1" in result.formula


def test_raw_days_give_the_long_share_of_fii_index_futures() -> None:
    result = positioning([*HISTORY[:-3], *RAW])
    assert result.futures_long_ratio == round(43462 / (43462 + 193712), 4)
    before = round(42302 / (42302 + 186324), 4)
    assert result.futures_long_ratio_change == round(result.futures_long_ratio - before, 4)
    assert result.reasons == ()
    # the same nets as the history's last day: raw and history are one series
    assert result.index_futures == positioning(HISTORY).index_futures


def test_too_short_a_history_gives_none_with_reasons() -> None:
    one = positioning(RAW[-1:])
    assert one.index_futures is not None and one.index_futures.change is None
    assert one.index_futures.trend is None and one.index_futures.slope_sign is None
    assert any("one record" in r for r in one.reasons)
    three = positioning(RAW)
    assert three.index_futures is not None and three.index_futures.change == -150250 + 144022
    assert three.index_futures.trend is None and "3 records: the trend needs 6" in three.reasons
    two = positioning(RAW, sessions=2).index_futures
    assert two is not None and two.trend == -150250 - (-147316)
    empty = positioning([])
    assert empty.as_of is None and empty.index_futures is None and empty.reasons


def test_other_participants_and_bad_input() -> None:
    client = positioning(HISTORY, "client").index_futures
    assert client is not None and client.value == 105718
    with pytest.raises(ValueError, match="participant 'banks'"):
        positioning(HISTORY, "banks")
    with pytest.raises(ValueError, match="out of order"):
        positioning([HISTORY[1], HISTORY[0]])
    with pytest.raises(ValueError, match="out of order"):
        positioning([HISTORY[0], replace(HISTORY[1], day=HISTORY[0].day)])
    with pytest.raises(ValueError, match="sessions"):
        positioning(HISTORY, sessions=0)
