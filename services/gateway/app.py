"""The FastAPI app: REST, websocket, probes, metrics and the dashboard, over one Gateway."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import Depends, FastAPI, HTTPException, Request, WebSocket
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.gateway.assembler import ENGINES
from services.gateway.auth import authorized
from services.gateway.consumer import BlockConsumer
from services.gateway.core import Gateway
from services.gateway.history import history_router
from services.gateway.limits import BodySizeLimit
from services.gateway.metrics import GatewayMetrics
from services.gateway.output import OutputWriter
from services.gateway.runclock import follow_run
from services.gateway.schema import Document, document_json_schema
from services.gateway.tasks import BackgroundTasks
from shared.clock import RunClock, make_clock
from shared.config import Settings
from shared.logs import get_logger

log = get_logger("gateway")
STATIC_DIR = Path(__file__).parent / "static"
MAX_BODY_BYTES = 64 * 1024
JSON = "application/json"


def create_app(settings: Settings, *, tick_s: float = 0.5, health_poll_s: float = 2.0) -> FastAPI:
    """``tick_s``: how often stale flags are re-checked (wall clock); ``health_poll_s``: how
    often worker health reports are read."""
    metrics = GatewayMetrics()
    writer = OutputWriter(settings.output_path)
    event_clock = settings.clock == "event"
    # the wall clock follows the feed: a replay is judged on its own time (shared.clock)
    clock = make_clock("event") if event_clock else RunClock()
    gateway = Gateway(
        clock,
        event_clock,
        metrics,
        writer,
        settings.ws_queue_size,
        settings.ws_heartbeat_s,
    )
    hub = gateway.hub
    consumer = BlockConsumer(settings, gateway, metrics)
    background = BackgroundTasks()

    async def ticker() -> None:
        while True:
            await asyncio.sleep(tick_s)
            gateway.tick()

    async def heartbeats() -> None:
        while True:
            await asyncio.sleep(settings.ws_heartbeat_s)
            hub.heartbeat(gateway.state.sequence)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        background.start("block_consumer", consumer.run())
        background.start("health_poller", consumer.poll_health(health_poll_s))
        background.start("heartbeats", heartbeats())
        background.start("output_writer", writer.run())
        if not event_clock:
            background.start("ticker", ticker())
            assert isinstance(clock, RunClock)
            background.start("run_clock", follow_run(consumer.client, clock, health_poll_s))
        log.info(
            "gateway_started",
            output=str(settings.output_path),
            clock=settings.clock,
            auth=settings.api_token is not None,
        )
        try:
            yield
        finally:
            await background.stop()
            await writer.flush()
            await consumer.close()
            log.info("gateway_stopped", sequence=gateway.state.sequence)

    app = FastAPI(title="AegisMatrix gateway", version="1", lifespan=lifespan)
    app.state.gateway = gateway
    app.state.metrics = metrics
    app.state.consumer = consumer
    app.state.background = background
    app.add_middleware(
        CORSMiddleware,
        allow_origins=[o.strip() for o in settings.cors_origins.split(",")],
        allow_methods=["GET"],
        allow_headers=["Authorization"],
    )
    app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)

    def require_token(request: Request) -> None:
        if not authorized(request, settings.api_token):
            raise HTTPException(
                401, "missing or wrong token", headers={"WWW-Authenticate": "Bearer"}
            )

    api = [Depends(require_token)]

    @app.get("/api/v1/document", dependencies=api, responses={200: {"model": Document}})
    def get_document() -> Response:
        """The whole document, as written to aegismatrix.json."""
        return Response(gateway.document()[1], media_type=JSON)

    @app.get("/api/v1/blocks/{engine}", dependencies=api)
    def get_block(engine: str) -> JSONResponse:
        """One engine's section (market, direction, seller, buyer)."""
        if engine not in ENGINES:
            raise HTTPException(404, f"unknown engine {engine!r}; one of {', '.join(ENGINES)}")
        section = gateway.state.sections.get(engine)
        if section is None:
            raise HTTPException(404, f"no {engine} block yet")
        return JSONResponse(section)

    @app.get("/api/v1/schema", dependencies=api)
    def get_schema() -> JSONResponse:
        """JSON Schema of the document."""
        return JSONResponse(document_json_schema())

    app.include_router(history_router(consumer.client, api))

    @app.websocket("/ws")
    async def websocket(ws: WebSocket) -> None:
        if not authorized(ws, settings.api_token):
            await ws.close(code=1008, reason="missing or wrong token")
            return
        await ws.accept()
        await hub.serve(ws)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        """Liveness: fails once a background task has died (only a restart brings it back)."""
        if not background.healthy:
            return JSONResponse(
                {"status": "failed", "failed_tasks": sorted(background.failed)}, status_code=503
            )
        return JSONResponse({"status": "alive"})

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        redis_ok = await consumer.ping()
        blocks = gateway.has_blocks()
        failed = sorted(background.failed)
        ready = redis_ok and blocks and not failed
        return JSONResponse(
            {"ready": ready, "redis": redis_ok, "blocks": blocks, "failed_tasks": failed},
            status_code=200 if ready else 503,
        )

    @app.get("/metrics", include_in_schema=False)
    def get_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
