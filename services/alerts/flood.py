"""Whether a replay run as fast as possible is pouring blocks in right now.

The alerts are off the document's path. While an unpaced replay floods ``aegis:blocks``
(thousands of blocks a second), reading and evaluating them costs the one Redis thread every
engine waits on, and the box's memory bandwidth, even on idle CPU. The service then reads
nothing and catches up once blocks stop arriving: the same blocks in the same order give the
same alerts (services.alerts.evaluate), only later. Live, and in a paced replay, it reads as
they come.

The stream is capped where it is written (``AEGIS_BLOCKS_MAXLEN``, trimmed whether read or
not), so the wait is bounded: once the group's unread backlog reaches half the cap, or cannot
be told (Redis before 7 gives no group lag), the service reads through the flood rather than
let the oldest unread blocks be trimmed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import orjson
import redis

from shared.bus import streams
from shared.bus.retention import group_lag
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
    """``on()``: the run record says an unpaced replay, a block arrived on ``stream`` since
    the previous look (at least ``every_s`` ago), and ``group`` has fewer than
    ``max_backlog`` entries still to read. One GET, one XREVRANGE and one XINFO GROUPS a
    look."""

    def __init__(
        self,
        client: redis.Redis,
        max_backlog: int,
        stream: str = streams.BLOCKS,
        group: str = "alerts",
        every_s: float = CHECK_EVERY_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.max_backlog = max_backlog
        self.stream = stream
        self.group = group
        self.every_s = every_s
        self._monotonic = monotonic
        self._looked_at: float | None = None
        self._newest: bytes | None = None
        self._on = False
        self.backlog: int | None = None  # the group's lag at the last look

    def on(self) -> bool:
        now = self._monotonic()
        if self._looked_at is not None and now - self._looked_at < self.every_s:
            return self._on
        self._looked_at = now
        pipe = self.client.pipeline(transaction=False)
        pipe.get(streams.RUN)
        pipe.xrevrange(self.stream, count=1)
        pipe.xinfo_groups(self.stream)
        raw, newest, groups = pipe.execute(raise_on_error=False)
        newest_id = newest[0][0] if isinstance(newest, list) and newest else None
        arriving = newest_id is not None and newest_id != self._newest
        self._newest = newest_id
        self.backlog = group_lag(groups, self.group)
        room = self.backlog is not None and self.backlog < self.max_backlog
        self._on = arriving and room and unpaced_replay(raw)
        return self._on
