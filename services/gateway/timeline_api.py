"""The history database on the API (written by services.history): a typed series over a time
range, time travel (every engine's section as it was at time T) and the live scorecard. Same
token as the document. Database calls run in a worker thread, off the event loop."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from datetime import date
from typing import Any

from fastapi import APIRouter, HTTPException, Query, params
from sqlalchemy.exc import SQLAlchemyError

from services.gateway.assembler import section
from services.gateway.metrics import GatewayMetrics
from shared.history.chain_change import fresh_chain, oi_change
from shared.history.scorecard import (
    LAST_CLOSES,
    VIX_BAND_FORMULA,
    Outcomes,
    direction_scores,
    score_history,
    stress_scores,
    summarise,
    trap_scores,
)
from shared.history.series import BY_NAME
from shared.history.store import HistoryStore
from shared.logs import get_logger
from shared.market.calendar import daily_open_time
from shared.market.clock import utc_iso_ms

log = get_logger("gateway")
MAX_POINTS = 20_000
OPEN_SCAN = 400  # seller blocks read from the open to find the session's first fresh chain


async def ask(fn: Any, *args: Any) -> Any:
    """``fn(*args)`` (a history database read) off the event loop; 503 when it fails."""
    try:
        return await asyncio.to_thread(fn, *args)
    except SQLAlchemyError as exc:  # no database yet, or it is away
        log.warning("history_read_failed", error=str(exc).splitlines()[0])
        raise HTTPException(503, "history unavailable: the database did not answer") from exc


def timeline_router(store: HistoryStore, dependencies: Sequence[params.Depends]) -> APIRouter:
    router = APIRouter()

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
                "window": f"{utc_iso_ms(start * 1000)} to {utc_iso_ms(end * 1000)}",
            },
        }

    @router.get("/api/v1/document/at", dependencies=list(dependencies))
    async def get_document_at(t: int = Query(..., description="epoch seconds")) -> dict[str, Any]:
        """Time travel: every engine's newest block at or before ``t``, as the document
        showed it then (``stale`` judged at ``t``)."""
        blocks = await ask(store.blocks_at, t)
        return {
            "at": utc_iso_ms(t * 1000),
            **{engine: section(block, t * 1000) for engine, block in blocks.items()},
        }

    @router.get("/api/v1/scorecard", dependencies=list(dependencies))
    async def get_scorecard(
        days: int = Query(400, ge=1, le=5000, description="calendar days back from the newest"),
        last: int = Query(LAST_CLOSES, ge=1, le=1000, description="the rolling window, in closes"),
    ) -> dict[str, Any]:
        """The live scorecard: the safe range live at each session's close, scored at its
        expiry's close, beside the VIX lognormal band at the same target."""
        found: Outcomes = await ask(scored_closes, store, days)
        rows, traps = found.ranges, found.traps
        return {
            "safe_range": summarise(rows, last),
            "trap": {"all": trap_scores(traps), "last": trap_scores(traps[-last:])},
            "stress": {"all": stress_scores(found.stresses)},
            "direction": direction_scores(found.directions),
            "in_sample_left_out": found.in_sample_left_out,
            "closes": [
                {
                    "session": r.forecast.session,
                    "expiry": r.forecast.expiry,
                    "lower": r.forecast.lower,
                    "upper": r.forecast.upper,
                    "expiry_close": r.expiry_close,
                    "inside": r.inside,
                    "inside_vix_band": r.inside_vix_band,
                    "source": r.forecast.source,
                }
                for r in rows[-last:]
            ],
            "expiries": [
                {"expiry": expiry, "close": close}
                for expiry, close in sorted({(r.forecast.expiry, r.expiry_close) for r in rows})
            ],
            "provenance": {
                "source": "data",
                "note": "the seller block's safe range and breach probabilities at each "
                "session's last block, scored at the expiry session's last spot once a later "
                f"session is stored (history database); beside them {VIX_BAND_FORMULA}, and "
                "the VIX lognormal breach curve",
            },
        }

    @router.get("/api/v1/chain/at", dependencies=list(dependencies))
    async def get_chain_at(
        t: int = Query(..., description="epoch seconds"),
        since: int | None = Query(
            None, description="epoch seconds; default: the first chain of t's session (the open)"
        ),
    ) -> dict[str, Any]:
        """The chain by strike as it was at ``t`` (the newest seller block with a fresh chain at
        or before it) and each strike's OI change since ``since``."""
        found = await ask(chain_at, store, t, since)
        if found is None:
            raise HTTPException(404, "no fresh option chain stored at or before t")
        return found

    return router


def chain_at(store: HistoryStore, t: int, since: int | None) -> dict[str, Any] | None:
    now_block = store.blocks_at(t).get("seller")
    now = fresh_chain(now_block)
    if now_block is None or now is None:
        return None
    if since is None:
        open_s = daily_open_time(date.fromisoformat(now_block.session_date))
        candidates = store.blocks_between("seller", open_s, now_block.as_of, OPEN_SCAN)
        base_block = next((b for b in candidates if fresh_chain(b) is not None), None)
    else:
        base_block = store.blocks_at(since).get("seller")
    base = fresh_chain(base_block)
    return {
        "at": utc_iso_ms(now_block.as_of * 1000),
        "since": utc_iso_ms(base_block.as_of * 1000) if base is not None and base_block else None,
        "expiry": now.get("expiry"),
        "spot": now.get("spot"),
        "chain_as_of": now.get("chain_as_of"),
        "strikes": oi_change(now, base),
        "provenance": {
            "source": "data",
            "note": "the seller block's chain.oi_by_strike at t, its change since the chain at "
            "since of the same expiry (history database); null where that chain lacks the strike",
        },
    }


class ScorecardGauges:
    """The live scorecard on /metrics: recomputed on a scrape, at most once a minute."""

    EVERY_S = 60.0

    def __init__(self, store: HistoryStore, metrics: GatewayMetrics) -> None:
        self.store, self.metrics = store, metrics
        self.at = -math.inf

    def refresh(self) -> None:
        if time.monotonic() - self.at < self.EVERY_S:
            return
        self.at = time.monotonic()
        try:
            found = scored_closes(self.store, 400)
            card = summarise(found.ranges)
        except SQLAlchemyError as exc:  # no database yet, or it is away: gauges keep their last
            log.warning("scorecard_failed", error=str(exc).splitlines()[0])
            return
        m = self.metrics
        for window in ("all", "last"):
            rates, breach = card[window], card["breach"][window]
            m.scorecard_closes.labels(window).set(rates["scored"])
            if rates["scored"]:
                m.scorecard_hit_rate.labels(window, "published").set(rates["hit_rate"])
            if rates["vix_band_scored"]:
                share = rates["vix_band_inside"] / rates["vix_band_scored"]
                m.scorecard_hit_rate.labels(window, "vix_band").set(share)
            if breach["strikes"]:
                m.scorecard_brier.labels(window, "published").set(breach["brier"])
                m.scorecard_brier.labels(window, "vix_lognormal").set(breach["brier_lognormal"])
        for window, pairs in (("all", found.traps), ("last", found.traps[-LAST_CLOSES:])):
            trap = trap_scores(pairs)
            for stat in ("brier", "brier_observed_rate", "auc"):
                if trap[stat] is not None:
                    m.scorecard_trap.labels(window, stat).set(trap[stat])


def scored_closes(store: HistoryStore, days: int) -> Outcomes:
    """The closing blocks of the last ``days`` (market, seller, direction), scored."""
    _, newest, _ = store.span()
    if newest is None:
        return score_history([], [], [])
    start = newest - days * 86_400
    return score_history(
        *(store.closing_blocks(e, start, newest) for e in ("market", "seller", "direction"))
    )
