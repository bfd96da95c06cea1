"""A feature at time t uses only data up to t: changing later bars changes nothing before."""

from __future__ import annotations

from typing import Any

import pytest

from services.features.state import FeatureState
from services.ingest.sources.base import RejectedInput
from services.ingest.sources.file_replay import ReplayWindow, iter_bars_fast
from shared.contract.schemas import Bar, FeatureSnapshot
from shared.features.daily import WINDOW_ROWS, compute_daily_features
from shared.features.history import load_history
from tests.pipeline import DATA_DIR

WINDOW = ReplayWindow(daily_from="2020-01-01", intraday_from="2021-02-01", end="2021-02-12")
CUT = 1612752300  # 2021-02-08 08:15 IST: everything from here on gets altered


def snapshots(bars: list[Bar]) -> list[FeatureSnapshot]:
    state = FeatureState()
    out: list[FeatureSnapshot] = []
    for b in bars:
        out.extend(state.apply(b, 0))
    return out


@pytest.mark.slow
def test_altering_future_bars_leaves_earlier_snapshots_unchanged() -> None:
    bars = [b for b in iter_bars_fast(DATA_DIR, WINDOW) if not isinstance(b, RejectedInput)]
    altered = [
        b.model_copy(update={k: getattr(b, k) * 1.07 for k in ("open", "high", "low", "close")})
        if b.open_time >= CUT
        else b
        for b in bars
    ]
    original, changed = snapshots(bars), snapshots(altered)
    before = [s for s in original if s.as_of <= CUT]
    assert len(before) > 300 and len(original) == len(changed)
    assert before == changed[: len(before)]
    assert original[len(before) :] != changed[len(before) :]  # the alteration did take effect


def test_live_window_equals_full_history_row() -> None:
    """The worker computes over the last WINDOW_ROWS rows; training over all history."""
    history = load_history(DATA_DIR, end="2024-12-31")
    full = compute_daily_features(history).iloc[-1]
    windowed = compute_daily_features(history.tail(WINDOW_ROWS)).iloc[-1]
    assert (full - windowed).abs().max() < 1e-9


@pytest.mark.slow
def test_checkpoint_round_trip_continues_identically() -> None:
    bars = [b for b in iter_bars_fast(DATA_DIR, WINDOW) if not isinstance(b, RejectedInput)]
    half = len(bars) - 500
    straight = FeatureState()
    for b in bars[:half]:
        straight.apply(b, 0)
    resumed = FeatureState.from_checkpoint(straight.to_checkpoint())
    tail_straight = [s for b in bars[half:] for s in straight.apply(b, 0)]
    tail_resumed = [s for b in bars[half:] for s in resumed.apply(b, 0)]
    assert tail_straight == tail_resumed and tail_straight


@pytest.mark.slow
def test_a_failed_bar_leaves_no_trace_so_its_retry_matches_a_clean_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The worker retries a bar whose handler raised: the retry must neither count as a
    duplicate nor see half-applied state (a daily row, a session update)."""
    bars = [b for b in iter_bars_fast(DATA_DIR, WINDOW) if not isinstance(b, RejectedInput)]
    clean = snapshots(bars)
    minute = next(i for i, b in enumerate(bars) if b.interval == "1m" and b.open_time > CUT)
    daily = next(
        i
        for i, b in enumerate(bars)
        if b.interval == "1d" and b.symbol == "NIFTY" and b.open_time > CUT
    )
    real_snapshot = FeatureState._snapshot
    failing = {minute, daily}
    current = {"index": -1}

    def snapshot_failing_once(self: FeatureState, *args: Any, **kwargs: Any) -> FeatureSnapshot:
        if current["index"] in failing:
            failing.discard(current["index"])
            raise RuntimeError("injected failure")
        return real_snapshot(self, *args, **kwargs)

    monkeypatch.setattr(FeatureState, "_snapshot", snapshot_failing_once)
    state, retried = FeatureState(), []
    for i, bar in enumerate(bars):
        current["index"] = i
        try:
            retried.extend(state.apply(bar, 0))
        except RuntimeError:
            retried.extend(state.apply(bar, 0))  # what the worker's retry does
    assert not failing, "both injected failures fired"
    assert state.duplicates == 0
    assert retried == clean
