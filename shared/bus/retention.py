"""Trimming a group-read stream without losing an entry some group still needs.

An entry may go once every consumer group on the stream has acknowledged it: it is older
than each group's oldest pending entry and than each group's last-delivered id. A stream
that no group reads yet is never trimmed. When unacknowledged entries alone exceed the
length limit, nothing is dropped: the caller raises an alarm (health degraded) instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis


@dataclass(frozen=True)
class TrimResult:
    trimmed: int  # entries removed by this call
    length: int  # entries left
    safe_id: str | None  # entries older than this were acknowledged by every group


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _parse(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _after(entry_id: str) -> str:
    ms, seq = _parse(entry_id)
    return f"{ms}-{seq + 1}"


def acknowledged_before(client: redis.Redis, stream: str) -> str | None:
    """The oldest id some group still needs (every older entry is acknowledged by all
    groups), or None when no group reads ``stream``."""
    try:
        groups = client.xinfo_groups(stream)
    except redis.ResponseError:  # no such stream
        return None
    if not groups:
        return None
    needed: list[str] = []
    for group in groups:
        if group.get("pending"):
            summary = client.xpending(stream, _text(group["name"]))
            if summary["min"] is not None:  # else acknowledged since XINFO: as below
                needed.append(_text(summary["min"]))
                continue
        needed.append(_after(_text(group["last-delivered-id"])))
    return min(needed, key=_parse)


def trim_acknowledged(client: redis.Redis, stream: str, maxlen: int) -> TrimResult:
    """Above ``maxlen`` entries, remove every entry all groups acknowledged."""
    length = client.xlen(stream)
    if length <= maxlen:
        return TrimResult(0, length, None)
    safe_id = acknowledged_before(client, stream)
    if safe_id is None:
        return TrimResult(0, length, None)
    trimmed = client.xtrim(stream, minid=safe_id, approximate=False)
    return TrimResult(int(trimmed), length - int(trimmed), safe_id)


def group_info(groups: object, group: str) -> dict[str, Any] | None:
    """``group``'s entry in an XINFO GROUPS reply; None when it has none (or the reply is
    the error of a stream that does not exist)."""
    if not isinstance(groups, list):
        return None
    return next((g for g in groups if g.get("name") in (group, group.encode())), None)


def group_lag(groups: object, group: str) -> int | None:
    """Entries on the stream ``group`` has not been delivered yet, from an XINFO GROUPS
    reply; None when Redis cannot tell (before Redis 7, entries deleted in between) or the
    group does not exist."""
    lag = (group_info(groups, group) or {}).get("lag")
    return lag if isinstance(lag, int) else None


def trimmed_unread(lag: object, length: object) -> int:
    """Entries a group never read that are gone: its lag (entries added since those it
    read, Redis 7's XINFO GROUPS) beyond the stream's length. 0 when either is unknown."""
    if not isinstance(lag, int) or not isinstance(length, int):
        return 0
    return max(0, lag - length)


@dataclass
class OwnStreamTrim:
    """A group-read stream trimmed by the service that writes it, never by a reader (whose
    credential could then drop what other groups have not read): ``trim`` removes what every
    group acknowledged above ``maxlen`` and remembers the length left."""

    stream: str
    maxlen: int
    trimmed: int = 0
    length: int | None = None

    def trim(self, client: redis.Redis) -> TrimResult:
        result = trim_acknowledged(client, self.stream, self.maxlen)
        self.trimmed += result.trimmed
        self.length = result.length
        return result

    def degraded_reason(self) -> str | None:
        """Unacknowledged entries alone above the limit: nothing is dropped, this is said."""
        if self.length is None or self.length <= self.maxlen:
            return None
        return (
            f"{self.stream} holds {self.length} entries not acknowledged by every group "
            f"(AEGIS_STREAM_MAXLEN {self.maxlen}); none is trimmed unread"
        )
