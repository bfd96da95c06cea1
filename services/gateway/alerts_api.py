"""GET /api/v1/alerts: the newest alert records, newest first, read-only. Same token as the
document. Live: from aegis:alerts (written by services.alerts); with ``at`` (time travel):
from the history database, the alerts raised up to that moment."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import orjson
import redis
import redis.asyncio as aioredis
from fastapi import APIRouter, HTTPException, Query, params

from services.gateway.timeline_api import ask
from shared.bus import streams
from shared.history.store import HistoryStore
from shared.logs import get_logger

log = get_logger("gateway")
MAX_LIMIT = 500


def alerts_router(
    client: aioredis.Redis, store: HistoryStore, dependencies: Sequence[params.Depends]
) -> APIRouter:
    router = APIRouter()

    @router.get("/api/v1/alerts", dependencies=list(dependencies))
    async def get_alerts(
        limit: int = Query(50, ge=1, le=MAX_LIMIT),
        at: int | None = Query(
            None, ge=0, description="epoch s: the alerts raised up to then (history database)"
        ),
    ) -> dict[str, Any]:
        """Recent alerts, newest first: what happened in words, the rule, the value, when
        (``as_of`` of the block, epoch seconds) and whether it was pushed."""
        if at is not None:
            alerts = await ask(store.alerts_until, at, limit)
            return {"alerts": alerts, "count": len(alerts), "at": at}
        try:
            entries = cast(
                list[tuple[bytes, dict[bytes, bytes]]],
                await client.xrevrange(streams.ALERTS, "+", "-", count=limit),
            )
        except redis.RedisError as exc:
            log.warning("alerts_read_failed", error=str(exc))
            raise HTTPException(503, "alerts unavailable: Redis did not answer") from exc
        alerts = []
        for raw_id, fields in entries:
            try:
                record = orjson.loads(fields[b"d"])
            except (KeyError, orjson.JSONDecodeError):
                continue
            alerts.append({"stream_id": raw_id.decode(), **record})
        return {"alerts": alerts, "count": len(alerts)}

    return router
