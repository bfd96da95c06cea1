"""Recent history for the dashboard's pictures, read from the aegis:blocks stream: one row
per session for the main signals (trap, expiry stress, today's direction probabilities, safe
range, close) and the newest session's intraday prices with its safe range and breakout
levels. GET /api/v1/history.

``History`` is pure (blocks in, rows out). ``HistoryReader`` keeps it current: the first
request reads the stream backwards (at most ``max_backfill`` entries), later ones read only
what arrived since. A model value of a session the model was trained on (provenance
``in_sample``) is left out, so the strip never shows in-sample model output.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio as aioredis
from fastapi import APIRouter, Query, params

from shared.bus import replies, streams
from shared.contract.codec import DecodeError, decode
from shared.contract.paths import number
from shared.contract.schemas import SignalBlock
from shared.logs import get_logger

log = get_logger("gateway")
READ_CHUNK = 2000

# (engine, path in the block's data, row field); a model path's value is dropped in sample
FIELDS: tuple[tuple[str, str, str], ...] = (
    ("market", "spot", "close"),
    ("direction", "today.probabilities.up", "up"),
    ("direction", "today.probabilities.down", "down"),
    ("seller", "trap.score", "trap"),
    ("seller", "expiry_stress.score", "stress"),
    ("seller", "safe_range.lower", "range_lower"),
    ("seller", "safe_range.upper", "range_upper"),
)


def _get(data: dict[str, Any], path: str) -> Any:
    node: Any = data
    for key in path.split("."):
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _in_sample(data: dict[str, Any], path: str) -> bool:
    """The group holding ``path`` was made by a model on data it was trained on."""
    group = data.get(path.split(".")[0])
    prov = group.get("provenance") if isinstance(group, dict) else None
    return isinstance(prov, dict) and prov.get("in_sample") is True


@dataclass
class History:
    sessions: int
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    _as_of: dict[tuple[str, str], int] = field(default_factory=dict)  # (session, engine)
    intraday_session: str | None = None
    intraday: list[tuple[int, float]] = field(default_factory=list)
    levels: dict[str, Any] = field(default_factory=dict)  # newest session's levels

    def add(self, block: SignalBlock) -> None:
        """Take one block; an older block of the same session and engine changes nothing."""
        session, engine = block.session_date, block.engine
        if self.rows and session < min(self.rows) and len(self.rows) >= self.sessions:
            return
        key = (session, engine)
        if block.as_of < self._as_of.get(key, 0):
            return
        self._as_of[key] = block.as_of
        row = self.rows.setdefault(session, {"session_date": session, "in_sample_left_out": 0})
        for eng, path, name in FIELDS:
            if eng != engine:
                continue
            if _in_sample(block.data, path):
                row[name] = None
                row["in_sample_left_out"] += 1
            else:
                row[name] = number(_get(block.data, path))
        self._intraday(block)
        for old in sorted(self.rows)[: max(0, len(self.rows) - self.sessions)]:
            del self.rows[old]
            self._as_of = {k: v for k, v in self._as_of.items() if k[0] != old}

    def _intraday(self, block: SignalBlock) -> None:
        session = block.session_date
        if self.intraday_session is not None and session < self.intraday_session:
            return
        if session != self.intraday_session:
            self.intraday_session, self.intraday, self.levels = session, [], {}
        data = block.data
        if block.engine == "market" and block.kind == "intraday":
            spot = number(data.get("spot"))
            if spot is not None and (not self.intraday or block.as_of > self.intraday[-1][0]):
                self.intraday.append((block.as_of, spot))
            self.levels["prev_close"] = number(data.get("prev_close"))
        elif block.engine == "seller":
            r = data.get("safe_range") or {}
            self.levels.update(
                range_lower=number(r.get("lower")),
                range_upper=number(r.get("upper")),
                expiry=r.get("expiry"),
                days_to_expiry=r.get("days_to_expiry"),
                coverage_target=number(r.get("coverage_target")),
            )
        elif block.engine == "buyer":
            lv = data.get("breakout_levels") or {}
            self.levels.update(
                breakout_lower=number(lv.get("lower")), breakout_upper=number(lv.get("upper"))
            )

    def view(self, sessions: int) -> dict[str, Any]:
        rows = [self.rows[d] for d in sorted(self.rows)[-sessions:]]
        return {
            "sessions": rows,
            "intraday": {
                "session_date": self.intraday_session,
                "points": [[t, p] for t, p in self.intraday],
                **self.levels,
            },
            "source": f"stream {streams.BLOCKS}: the newest block per engine and session",
        }


class HistoryReader:
    """Feeds ``History`` from the block stream: a bounded backfill, then increments."""

    def __init__(self, client: aioredis.Redis, history: History, max_backfill: int) -> None:
        self.client = client
        self.history = history
        self.max_backfill = max_backfill
        self.last_id: bytes | None = None
        self.skipped = 0
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        async with self._lock:
            if self.last_id is None:
                await self._backfill()
            else:
                await self._follow()

    async def _backfill(self) -> None:
        entries: list[tuple[bytes, dict[bytes, bytes]]] = []
        upper: bytes | str = "+"
        while len(entries) < self.max_backfill:
            chunk = await replies.xrevrange_async(
                self.client, streams.BLOCKS, max=upper, count=READ_CHUNK
            )
            if not chunk:
                break
            entries.extend(chunk)
            upper = b"(" + chunk[-1][0]
            if len(chunk) < READ_CHUNK:
                break
        self.last_id = entries[0][0] if entries else b"0-0"
        # decoding tens of thousands of blocks takes a while: off the event loop
        await asyncio.to_thread(self._apply, list(reversed(entries)))

    async def _follow(self) -> None:
        while True:
            assert self.last_id is not None
            chunk = await replies.xrange_async(
                self.client, streams.BLOCKS, min=b"(" + self.last_id, count=READ_CHUNK
            )
            if not chunk:
                return
            self.last_id = chunk[-1][0]
            await asyncio.to_thread(self._apply, chunk)
            if len(chunk) < READ_CHUNK:
                return

    def _apply(self, entries: Any) -> None:
        for _, fields in entries:
            try:
                message = decode(fields)
            except DecodeError:
                self.skipped += 1  # the block consumer dead-letters it; the history skips it
                continue
            if isinstance(message, SignalBlock):
                self.history.add(message)


def history_router(
    client: aioredis.Redis,
    dependencies: Sequence[params.Depends],
    *,
    sessions: int = 60,
    max_backfill: int = 60_000,
) -> APIRouter:
    """GET /api/v1/history?sessions=N (N <= ``sessions``)."""
    reader = HistoryReader(client, History(sessions), max_backfill)
    router = APIRouter()

    @router.get("/api/v1/history", dependencies=list(dependencies))
    async def get_history(
        sessions_wanted: int = Query(20, alias="sessions", ge=1, le=sessions),
    ) -> dict[str, Any]:
        """Recent sessions' main signals and today's intraday prices, for the charts."""
        try:
            await reader.refresh()
        except redis.RedisError as exc:  # serve what is known, say it may be behind
            log.warning("history_read_failed", error=str(exc))
            return {**reader.history.view(sessions_wanted), "behind": str(exc)}
        return reader.history.view(sessions_wanted)

    return router
