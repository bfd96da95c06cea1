"""A token bucket: at most ``burst`` requests at once, refilled one per ``min_interval_s``."""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """``acquire()`` waits (through ``wait``) until a token is available, then takes it.

    ``wait(seconds)`` returns True when the caller should stop (``threading.Event.wait``);
    ``acquire`` then returns False without taking a token.
    """

    def __init__(
        self,
        min_interval_s: float,
        *,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[float], bool],
    ) -> None:
        if min_interval_s < 0 or burst < 1:
            raise ValueError("min_interval_s must be >= 0 and burst >= 1")
        self.min_interval_s = min_interval_s
        self.burst = burst
        self._clock = clock
        self._wait = wait
        self._tokens = float(burst)
        self._updated = clock()

    def _refill(self) -> None:
        now = self._clock()
        if self.min_interval_s == 0:
            self._tokens = float(self.burst)
        else:
            gained = (now - self._updated) / self.min_interval_s
            self._tokens = min(float(self.burst), self._tokens + gained)
        self._updated = now

    def acquire(self) -> bool:
        self._refill()
        while self._tokens < 1:
            if self._wait((1 - self._tokens) * self.min_interval_s):
                return False
            self._refill()
        self._tokens -= 1
        return True
