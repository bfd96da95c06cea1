"""When newer data can first exist: the basis of the stale flag (no false alarms overnight)."""

from __future__ import annotations

from datetime import datetime

import pytest

from shared.market import calendar


def ist(stamp: str) -> int:
    return int(datetime.fromisoformat(stamp).replace(tzinfo=calendar.IST).timestamp())


@pytest.mark.parametrize(
    ("kind", "as_of", "due"),
    [
        ("intraday", "2025-06-27T10:00:00", "2025-06-27T10:01:00"),  # inside a session
        ("intraday", "2025-06-27T15:30:00", "2025-06-30T09:16:00"),  # Friday's last minute
        ("intraday", "2025-06-30T08:00:00", "2025-06-30T09:16:00"),  # before the open
        ("daily", "2025-06-27T15:30:00", "2025-06-30T15:30:00"),  # over the weekend
        ("daily", "2025-08-14T15:30:00", "2025-08-18T15:30:00"),  # 15 Aug holiday, weekend
    ],
)
def test_next_bar_due(kind: str, as_of: str, due: str) -> None:
    assert calendar.next_bar_due(kind, ist(as_of)) == ist(due)
