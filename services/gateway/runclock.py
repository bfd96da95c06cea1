"""Keeps the gateway's RunClock on the feed's own time: polls ``aegis:run`` (written by
ingest) and hands the record to the clock. A malformed record is logged once and ignored
(the clock keeps the last good one); a missing record means wall time."""

from __future__ import annotations

import asyncio

import orjson
import redis
import redis.asyncio as aioredis

from shared.bus import streams
from shared.logs import get_logger
from shared.market.clock import RunClock, RunInfo

log = get_logger("gateway")


async def read_run(client: aioredis.Redis) -> RunInfo | None:
    """The feed's run record; None when there is none. Raises ValueError when malformed."""
    raw = await client.get(streams.RUN)
    if raw is None:
        return None
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"run record is not JSON: {exc}") from exc
    if not isinstance(record, dict):
        raise ValueError("run record is not a JSON object")
    return RunInfo.from_json(record)


async def follow_run(client: aioredis.Redis, clock: RunClock, interval_s: float) -> None:
    """Forever: read the run record every ``interval_s`` and set it on ``clock``."""
    last_error = ""
    while True:
        try:
            run = await read_run(client)
            if _headline(run) != _headline(clock.run):
                log.info("feed_clock", **(run.to_json() if run else {"mode": "wall"}))
            clock.set_run(run)
            last_error = ""
        except ValueError as exc:
            if str(exc) != last_error:
                log.error("run_record_invalid", error=str(exc))
            last_error = str(exc)
        except (redis.RedisError, OSError) as exc:
            log.warning("run_record_read_failed", error=str(exc))
        await asyncio.sleep(interval_s)


def _headline(run: RunInfo | None) -> tuple[object, ...]:
    return () if run is None else (run.mode, run.source, run.speed, run.finished)
