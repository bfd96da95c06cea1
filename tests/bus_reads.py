"""Typed bus access for tests: stream entries decoded as the message type a test expects (the
test fails, naming both types, when another arrives), XADD that gives the entry id as text,
a hash's fields by name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

import redis

from shared.bus import replies
from shared.contract.codec import decode
from shared.contract.schemas import Message

M = TypeVar("M", bound=Message)


def decoded(fields: Mapping[Any, Any], cls: type[M]) -> M:
    """``codec.decode`` of an entry the test expects to hold a ``cls``."""
    message = decode(fields)
    assert isinstance(message, cls), f"expected {cls.__name__}, got {type(message).__name__}"
    return message


def messages(client: redis.Redis, stream: str, cls: type[M]) -> list[M]:
    """Every entry of ``stream``, oldest first, each a ``cls``."""
    return [decoded(fields, cls) for _, fields in replies.xrange(client, stream)]


def newest(client: redis.Redis, stream: str, cls: type[M]) -> M:
    """The last entry of ``stream``, a ``cls`` (the stream must not be empty)."""
    entries = replies.xrevrange(client, stream, count=1)
    assert entries, f"{stream} is empty"
    return decoded(entries[0][1], cls)


def add(client: redis.Redis, stream: str, fields: Mapping[str, Any] | replies.Fields) -> str:
    """XADD ``fields`` (e.g. ``codec.encode``'s, or hand-made bad ones) to ``stream``: the id."""
    # redis-py types the fields as an invariant dict of its own value union; any mapping works
    return _text(client.xadd(stream, cast(dict[Any, Any], fields)))


def hash_items(client: redis.Redis, key: str) -> dict[str, bytes]:
    """The fields of hash ``key``: name as text -> value as stored."""
    items: dict[str, bytes] = {}
    for field, value in client.hgetall(key).items():
        assert isinstance(value, bytes)
        items[_text(field)] = value
    return items


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
