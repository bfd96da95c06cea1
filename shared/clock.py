"""Time for stamps (computed_at, generated_at) and staleness.

``WallClock`` is real time. ``EventClock`` is the time of the newest event seen, so a replay
of the same input gives the same stamps and the same document, byte for byte.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int: ...

    def observe(self, event_time_s: int) -> None: ...


class WallClock:
    def now_ms(self) -> int:
        return int(time.time() * 1000)

    def observe(self, event_time_s: int) -> None:
        return None


class EventClock:
    def __init__(self) -> None:
        self._latest_ms = 0

    def now_ms(self) -> int:
        return self._latest_ms

    def observe(self, event_time_s: int) -> None:
        self._latest_ms = max(self._latest_ms, event_time_s * 1000)


def make_clock(kind: str) -> Clock:
    return EventClock() if kind == "event" else WallClock()
