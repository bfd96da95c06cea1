"""Rate-limited logging for events a client or a bad producer can repeat at will (refused
blocks, refused connections, a failing loop): one line per key per interval, and the next
line says how many were left out. Metrics still count every event."""

from __future__ import annotations

import time

LOG_EVERY_S = 10.0


class LogLimiter:
    def __init__(self, interval_s: float = LOG_EVERY_S) -> None:
        self.interval_s = interval_s
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def allow(self, key: str) -> int | None:
        """The number of lines left out since the last one if a line may be written now,
        else None. Keys should be few (event and reason, not client addresses)."""
        now = time.monotonic()
        if now - self._last.get(key, float("-inf")) < self.interval_s:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return None
        self._last[key] = now
        return self._suppressed.pop(key, 0)
