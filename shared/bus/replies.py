"""Typed Redis replies: the one place that states what redis-py's sync client returns here.

redis-py types its commands as ``Awaitable[T] | T`` over RESP2 and RESP3 shapes. Every client
in this project is synchronous, speaks RESP2 and keeps bytes (``decode_responses=False``), so
each reply has one shape; these helpers call the command and ``cast`` to that shape, so the
call sites stay typed without ignores. Works with pipelines' clients too (any ``redis.Redis``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict, cast

import redis
import redis.asyncio as aioredis

Fields = dict[bytes, bytes]
Entry = tuple[bytes, Fields]
"""One stream entry: its id and its raw fields."""


class Pending(TypedDict):
    """One row of XPENDING's extended form."""

    message_id: bytes
    consumer: bytes
    time_since_delivered: int
    times_delivered: int


def xrange(
    client: redis.Redis, stream: str, min: str = "-", max: str = "+", count: int | None = None
) -> list[Entry]:
    return cast(list[Entry], client.xrange(stream, min=min, max=max, count=count))


def xrevrange(
    client: redis.Redis, stream: str, max: str = "+", min: str = "-", count: int | None = None
) -> list[Entry]:
    return cast(list[Entry], client.xrevrange(stream, max=max, min=min, count=count))


def _one_stream(reply: Any) -> list[Entry]:
    """The entries of a one-stream XREAD / XREADGROUP reply (``[[stream, entries]]`` or nil)."""
    return cast(list[Entry], reply[0][1]) if reply else []


def xread(
    client: redis.Redis,
    stream: str,
    last_id: str | bytes,
    count: int | None = None,
    block: int | None = None,
) -> list[Entry]:
    """Entries of ``stream`` after ``last_id`` (waiting up to ``block`` ms for one, if given)."""
    return _one_stream(client.xread({stream: last_id}, count=count, block=block))


def xreadgroup(
    client: redis.Redis,
    group: str,
    consumer: str,
    stream: str,
    last_id: str | bytes,
    count: int | None = None,
    block: int | None = None,
) -> list[Entry]:
    """Entries of one stream for ``consumer`` of ``group`` (``">"`` for new ones)."""
    return _one_stream(
        client.xreadgroup(group, consumer, {stream: last_id}, count=count, block=block)
    )


def xpending_range(
    client: redis.Redis,
    stream: str,
    group: str,
    min: str | bytes,
    max: str | bytes,
    count: int,
    consumer: str | None = None,
) -> list[Pending]:
    return cast(
        list[Pending],
        client.xpending_range(stream, group, min=min, max=max, count=count, consumername=consumer),
    )


def xadd(client: redis.Redis, stream: str, fields: Mapping[str, Any] | Fields) -> None:
    """XADD ``fields`` (e.g. ``codec.encode``'s, or an entry's as read) to ``stream``; on a
    pipeline it is queued."""
    client.xadd(stream, cast(dict[Any, Any], fields))


def get_bytes(client: redis.Redis, key: str) -> bytes | None:
    return cast(bytes | None, client.get(key))


def hget_bytes(client: redis.Redis, key: str, field: str) -> bytes | None:
    return cast(bytes | None, client.hget(key, field))


# The gateway's asyncio client: the same shapes, awaited.
async def xread_async(
    client: aioredis.Redis,
    stream: str,
    last_id: str | bytes,
    count: int | None = None,
    block: int | None = None,
) -> list[Entry]:
    return _one_stream(await client.xread({stream: last_id}, count=count, block=block))


async def xrange_async(
    client: aioredis.Redis,
    stream: str,
    min: str | bytes = "-",
    max: str | bytes = "+",
    count: int | None = None,
) -> list[Entry]:
    return cast(list[Entry], await client.xrange(stream, min=min, max=max, count=count))


async def xrevrange_async(
    client: aioredis.Redis,
    stream: str,
    max: str | bytes = "+",
    min: str | bytes = "-",
    count: int | None = None,
) -> list[Entry]:
    return cast(list[Entry], await client.xrevrange(stream, max=max, min=min, count=count))
