"""Liveness (/healthz), readiness (/readyz) and /metrics. The probes' verdicts are open (status
code and one word); their details, and /metrics, need the token when one is set."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request, params
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.gateway.auth import authorized
from services.gateway.consumer import BlockConsumer
from services.gateway.core import Gateway
from services.gateway.metrics import GatewayMetrics
from services.gateway.output import OutputWriter
from services.gateway.tasks import SupervisedTasks
from services.gateway.timeline_api import ScorecardGauges


def probes_router(
    gateway: Gateway,
    consumer: BlockConsumer,
    tasks: SupervisedTasks,
    writer: OutputWriter,
    metrics: GatewayMetrics,
    scorecard: ScorecardGauges,
    token: str | None,
    dependencies: Sequence[params.Depends],
) -> APIRouter:
    router = APIRouter()

    @router.get("/healthz", include_in_schema=False)
    def healthz(request: Request) -> JSONResponse:
        """Liveness: fails once a background task has died (only a restart brings it back).
        Details (which task, the output file) only for an authorised caller."""
        status = "alive" if tasks.healthy else "failed"
        body: dict[str, Any] = {"status": status}
        if authorized(request, token):
            body |= {"failed_tasks": sorted(tasks.failed), "output": writer.status()}
        return JSONResponse(body, status_code=200 if tasks.healthy else 503)

    @router.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> JSONResponse:
        """Ready when Redis answers, every task runs, blocks are in and none is stale, no feed
        is down, the output file is being written and, after Redis lost its data, the new
        document holds every section again; otherwise the reasons (authorised)."""
        redis_ok = await consumer.ping()
        failed = sorted(tasks.failed)
        rebuilding = [] if gateway.has_every_section() else consumer.epoch.degraded_reasons()
        reasons = gateway.readiness_problems() + rebuilding
        if not redis_ok:
            reasons.insert(0, "redis unreachable")
        if failed:
            reasons.insert(0, f"background tasks ended: {', '.join(failed)}")
        ready = not reasons
        body: dict[str, Any] = {"ready": ready}
        if authorized(request, token):
            body |= {
                "reasons": reasons,
                "redis": redis_ok,
                "blocks": gateway.has_blocks(),
                "failed_tasks": failed,
                "output": writer.status(),
            }
        return JSONResponse(body, status_code=200 if ready else 503)

    @router.get("/metrics", include_in_schema=False, dependencies=list(dependencies))
    def get_metrics() -> Response:
        scorecard.refresh()
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router
