"""Replay pacing: wait between events in proportion to their event-time gaps."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from services.ingest.sources.base import SourceEvent
from shared.contract.schemas import FuturesDay, OptionChain, ParticipantPositions
from shared.market.calendar import daily_close_time, ist_date

BAR_SECONDS = {"1m": 60, "5m": 300}


def event_time(message: SourceEvent) -> int:
    """When a message became known: a bar's end (a daily bar's session close), a chain's
    snapshot time, a daily report's publication."""
    if isinstance(message, OptionChain):
        return message.snapshot_time
    if isinstance(message, ParticipantPositions | FuturesDay):
        return message.available_at
    if message.interval == "1d":
        return daily_close_time(ist_date(message.open_time))
    return message.open_time + BAR_SECONDS[message.interval]


class Pacer:
    """Holds each event back until ``(event gap) / speed`` wall seconds after the previous
    one (each gap capped at ``max_gap_s``). ``speed`` 0 means no waiting at all.

    ``wait(seconds)`` returns True when the replay should stop (``threading.Event.wait``).
    """

    def __init__(
        self,
        speed: float,
        max_gap_s: float | None = None,
        *,
        wait: Callable[[float], bool] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self.speed = speed
        self.max_gap_s = max_gap_s
        self._wait = wait or threading.Event().wait
        self._monotonic = monotonic
        self._last_event: int | None = None
        self._due = 0.0

    def pace(self, event_time_s: int) -> bool:
        """Wait until the event is due; False when asked to stop meanwhile."""
        if self.speed == 0:
            return True
        now = self._monotonic()
        if self._last_event is None:
            self._due = now
        else:
            gap = max(0.0, (event_time_s - self._last_event) / self.speed)
            if self.max_gap_s is not None:
                gap = min(gap, self.max_gap_s)
            self._due = max(self._due + gap, now)  # a slow consumer does not build up debt
        self._last_event = max(self._last_event or event_time_s, event_time_s)
        delay = self._due - now
        return not (delay > 0 and self._wait(delay))
