"""Whether a replay run as fast as possible is pouring blocks in right now.

The alerts are off the document's path. While an unpaced replay floods ``aegis:blocks``
(thousands of blocks a second), reading and evaluating them costs the one Redis thread every
engine waits on, and the box's memory bandwidth, even on idle CPU. The service then reads
nothing and catches up once blocks stop arriving: the same blocks in the same order give the
same alerts (services.alerts.evaluate), only later. Live, and in a paced replay, it reads as
they come.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import orjson
import redis

from shared.bus import streams
from shared.market.clock import RunInfo

CHECK_EVERY_S = 0.5


def unpaced_replay(raw: bytes | None) -> bool:
    """Whether the feed's run record (``aegis:run``) is a replay publishing as fast as it can
    (speed 0, or fast-forwarding to a paced part); no record or a malformed one: no."""
    if raw is None:
        return False
    try:
        run = RunInfo.from_json(orjson.loads(raw))
    except ValueError:  # orjson's error is one too; the watchdog logs a malformed record
        return False
    return run.mode == "replay" and not run.paced


class ReplayFlood:
    """``on()``: the run record says an unpaced replay and a block arrived on ``stream``
    since the previous look (at least ``every_s`` ago). One GET and one XREVRANGE a look."""

    def __init__(
        self,
        client: redis.Redis,
        stream: str = streams.BLOCKS,
        every_s: float = CHECK_EVERY_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.stream = stream
        self.every_s = every_s
        self._monotonic = monotonic
        self._looked_at: float | None = None
        self._newest: bytes | None = None
        self._on = False

    def on(self) -> bool:
        now = self._monotonic()
        if self._looked_at is not None and now - self._looked_at < self.every_s:
            return self._on
        self._looked_at = now
        pipe = self.client.pipeline(transaction=False)
        pipe.get(streams.RUN)
        pipe.xrevrange(self.stream, count=1)
        raw, newest = pipe.execute()
        newest_id = newest[0][0] if newest else None
        arriving = newest_id is not None and newest_id != self._newest
        self._newest = newest_id
        self._on = arriving and unpaced_replay(raw)
        return self._on
