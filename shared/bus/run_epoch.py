"""Noticing that Redis lost its data: restarted empty, flushed, or failed over to a replica
that never had it. The first process allowed to (ingest, the stack: under the ACL no other
service may write it) that finds no ``aegis:epoch`` key writes one (SET NX);
every process reads it at each health report (a stream worker also when it (re)connects).
A key that is gone, or another value than the one this process saw, means the streams,
checkpoints and series state it worked on are gone: the process drops what it holds in
memory and rebuilds from what Redis has, ingest re-publishes (or, its replay ended, replays
again), and each reports degraded, with when, for ``LOST_REASON_S``."""

from __future__ import annotations

import time
import uuid

import redis
import redis.asyncio as aioredis

from shared.bus import streams
from shared.logs import get_logger

LOST_REASON_S = 600.0
log = get_logger("epoch")


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


class EpochWatch:
    """One process's view of the epoch: ``check`` (or ``check_async``) says whether it
    changed since the last check."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.known: str | None = None
        self.lost_at: float | None = None

    def check(self, client: redis.Redis) -> bool:
        current = _text(client.get(streams.EPOCH))
        if current is None:
            try:
                client.set(streams.EPOCH, uuid.uuid4().hex, nx=True)
            except redis.exceptions.NoPermissionError:  # not a data writer: wait for one
                return self._seen(None)
            current = _text(client.get(streams.EPOCH))
        return self._seen(current)

    async def check_async(self, client: aioredis.Redis) -> bool:
        current = _text(await client.get(streams.EPOCH))
        if current is None:
            try:
                await client.set(streams.EPOCH, uuid.uuid4().hex, nx=True)
            except redis.exceptions.NoPermissionError:
                return self._seen(None)
            current = _text(await client.get(streams.EPOCH))
        return self._seen(current)

    def _seen(self, current: str | None) -> bool:
        lost = self.known is not None and current != self.known
        if lost:
            self.lost_at = time.time()
            log.error(
                "redis_data_lost",
                service=self.service,
                note="the epoch key is gone or new: Redis restarted empty or was flushed; "
                "state in memory dropped, rebuilt from what Redis holds",
            )
        self.known = current
        return lost

    def degraded_reasons(self) -> list[str]:
        """Why to report degraded, for ``LOST_REASON_S`` after a loss."""
        if self.lost_at is None or time.time() - self.lost_at > LOST_REASON_S:
            return []
        at = time.strftime("%H:%M:%S UTC", time.gmtime(self.lost_at))
        return [f"Redis lost its data at {at} (restarted empty or flushed): rebuilding"]
