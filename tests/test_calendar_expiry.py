"""The expiry roll on real NSE expiry days: a session's minutes target that day's expiry
(0 DTE); a snapshot at its close, live or in training, targets the next weekly expiry."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from services.features.state import FeatureState
from services.ingest.sources.base import RejectedInput
from services.ingest.sources.file_replay import ReplayWindow, iter_bars_fast
from shared.features.daily import compute_daily_features
from shared.features.history import load_history
from shared.market import calendar
from shared.models import labels
from tests.pipeline import DATA_DIR

D = date.fromisoformat


@pytest.mark.parametrize(
    ("day", "at_close", "expected"),
    [
        # Thursday era: the day before, the session itself, its close
        ("2024-06-26", True, ("2024-06-27", 1, 1)),
        ("2024-06-27", False, ("2024-06-27", 0, 0)),
        ("2024-06-27", True, ("2024-07-04", 7, 5)),
        # the last Thursday expiry rolls into the first Tuesday one
        ("2025-08-28", False, ("2025-08-28", 0, 0)),
        ("2025-08-28", True, ("2025-09-02", 5, 3)),
        # Tuesday era
        ("2025-09-01", True, ("2025-09-02", 1, 1)),
        ("2025-09-02", False, ("2025-09-02", 0, 0)),
        ("2025-09-02", True, ("2025-09-09", 7, 5)),
        # Thursday 2023-03-30 (Ram Navami) was a holiday: expiry moved to Wednesday; the
        # week after also skips Tuesday 2023-04-04 (Mahavir Jayanti)
        ("2023-03-28", True, ("2023-03-29", 1, 1)),
        ("2023-03-29", False, ("2023-03-29", 0, 0)),
        ("2023-03-29", True, ("2023-04-06", 8, 4)),
        # Diwali Muhurat sessions (an hour of trading, listed as sessions by the calendar
        # library) carry no expiry: Thursday 2021-11-04 -> Wednesday, Tuesday 2025-10-21 ->
        # Monday
        ("2021-11-02", True, ("2021-11-03", 1, 1)),
        ("2021-11-03", False, ("2021-11-03", 0, 0)),
        ("2021-11-03", True, ("2021-11-11", 8, 5)),  # the Muhurat hour counts as a session
        ("2025-10-20", False, ("2025-10-20", 0, 0)),
        ("2025-10-20", True, ("2025-10-28", 8, 5)),
        # Tuesday 2026-03-03 (Holi) is a holiday: expiry moves to Monday
        ("2026-02-27", True, ("2026-03-02", 3, 1)),
        ("2026-03-02", False, ("2026-03-02", 0, 0)),
        ("2026-03-02", True, ("2026-03-10", 8, 5)),
    ],
)
def test_target_expiry_during_session_and_at_close(
    day: str, at_close: bool, expected: tuple[str, int, int]
) -> None:
    expiry, days, sessions = calendar.days_to_expiry(D(day), at_close=at_close)
    assert (expiry.isoformat(), days, sessions) == expected


def test_a_close_never_targets_a_settled_expiry() -> None:
    """From every close in 2019..2026 the target is a later expiry, at most 5 sessions on
    (6 across a weekend special session such as a Budget day)."""
    for day in calendar.sessions():
        if D("2019-01-01") <= day <= D("2026-12-31"):
            expiry, days, sessions = calendar.days_to_expiry(day, at_close=True)
            special = sum(day < s <= expiry for s in calendar.SPECIAL_SESSIONS)
            assert expiry > day and days >= 1 and 1 <= sessions <= 5 + special, day


def test_budget_weekend_sessions_are_sessions_and_move_no_expiry() -> None:
    assert calendar.is_session(D("2026-02-01")) and calendar.is_session(D("2025-02-01"))
    assert calendar.next_weekly_expiry(D("2026-01-30")) == D("2026-02-03")  # Tuesday
    assert calendar.next_weekly_expiry(D("2025-01-31")) == D("2025-02-06")  # Thursday
    assert calendar.previous_session(D("2026-02-01")) == D("2026-02-01")


def test_daily_feature_rows_and_labels_roll_at_an_expiry_close() -> None:
    """Training sees an expiry day's row as the close snapshot does: next expiry ahead, and
    its labels settle at that next expiry, not at the one that just settled."""
    frame = load_history(DATA_DIR, end="2021-03-31")
    features = compute_daily_features(frame)
    row = features.loc[pd.Timestamp("2021-03-10")]  # Wednesday, moved expiry (holiday 03-11)
    assert (row["days_to_expiry"], row["sessions_to_expiry"]) == (8, 5)
    pos = labels.expiry_positions(frame.index)
    t = frame.index.get_loc(pd.Timestamp("2021-03-10"))
    assert frame.index[pos[t]] == pd.Timestamp("2021-03-18")
    assert frame.index[pos[t - 1]] == pd.Timestamp("2021-03-10")  # the day before: this one
    assert labels.realized_vol_to_expiry(frame["close"]).iloc[t] > 0  # no NaN on expiry day


@pytest.mark.slow
def test_live_snapshots_roll_from_the_expiry_session_to_its_close() -> None:
    """Real bars around the holiday-moved expiry of Wednesday 2021-03-10: its minutes are
    0 DTE, its close snapshot targets 2021-03-18 and agrees with the daily feature row."""
    window = ReplayWindow(daily_from="2020-01-01", intraday_from="2021-03-09", end="2021-03-10")
    state = FeatureState()
    snaps = [
        s
        for b in iter_bars_fast(DATA_DIR, window)
        if not isinstance(b, RejectedInput)
        for s in state.apply(b, 0)
    ]
    minutes = [s for s in snaps if s.kind == "intraday" and s.session_date == "2021-03-10"]
    closes = {s.session_date: s for s in snaps if s.kind == "daily"}
    assert len(minutes) > 300
    assert {(s.next_expiry, s.days_to_expiry, s.sessions_to_expiry) for s in minutes} == {
        ("2021-03-10", 0, 0)
    }
    close_09, close_10 = closes["2021-03-09"], closes["2021-03-10"]
    assert (close_09.next_expiry, close_09.days_to_expiry, close_09.sessions_to_expiry) == (
        "2021-03-10",
        1,
        1,
    )
    assert (close_10.next_expiry, close_10.days_to_expiry, close_10.sessions_to_expiry) == (
        "2021-03-18",
        8,
        5,
    )
    assert close_10.daily["days_to_expiry"] == close_10.days_to_expiry
    assert close_10.daily["sessions_to_expiry"] == close_10.sessions_to_expiry
