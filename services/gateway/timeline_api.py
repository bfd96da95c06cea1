"""The history database on the API (written by services.history): a typed series over a time
range, and time travel, every engine's section as it was at time T. Same token as the
document. Database calls run in a worker thread, off the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, HTTPException, Query, params
from sqlalchemy.exc import SQLAlchemyError

from services.gateway.assembler import iso_ms, section
from shared.history.series import BY_NAME
from shared.history.store import HistoryStore, open_engine
from shared.logs import get_logger

log = get_logger("gateway")
MAX_POINTS = 20_000


def timeline_router(history_url: str, dependencies: Sequence[params.Depends]) -> APIRouter:
    router = APIRouter()
    store = HistoryStore(open_engine(history_url))

    async def ask(fn: Any, *args: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, *args)
        except SQLAlchemyError as exc:  # no database yet, or it is away
            log.warning("history_read_failed", error=str(exc).splitlines()[0])
            raise HTTPException(503, "history unavailable: the database did not answer") from exc

    @router.get("/api/v1/series/{name}", dependencies=list(dependencies))
    async def get_series(
        name: str,
        start: int = Query(..., description="epoch seconds, inclusive"),
        end: int = Query(..., description="epoch seconds, inclusive"),
        step: int = Query(0, ge=0, description="seconds; the last point of each step"),
    ) -> dict[str, Any]:
        """One series over [start, end] (``as_of`` of the blocks, epoch seconds)."""
        series = BY_NAME.get(name)
        if series is None:
            raise HTTPException(404, f"unknown series {name!r}; one of {', '.join(BY_NAME)}")
        if end < start:
            raise HTTPException(422, "end is before start")
        found = await ask(store.series, name, start, end, step)
        if len(found) > MAX_POINTS:
            raise HTTPException(422, f"{len(found)} points: ask for a step or a shorter range")
        return {
            "series": name,
            "unit": series.unit,
            "meaning": series.meaning,
            "points": [[p.as_of, p.value] for p in found],
            "provenance": {
                "source": "data",
                "note": f"the {series.engine} block's {'.'.join(map(str, series.path))} at "
                "each block's as_of, as published (history database)",
                "window": f"{iso_ms(start * 1000)} to {iso_ms(end * 1000)}",
            },
        }

    @router.get("/api/v1/document/at", dependencies=list(dependencies))
    async def get_document_at(t: int = Query(..., description="epoch seconds")) -> dict[str, Any]:
        """Time travel: every engine's newest block at or before ``t``, as the document
        showed it then (``stale`` judged at ``t``)."""
        blocks = await ask(store.blocks_at, t)
        return {
            "at": iso_ms(t * 1000),
            **{engine: section(block, t * 1000) for engine, block in blocks.items()},
        }

    return router
