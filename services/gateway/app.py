"""The FastAPI app: REST, websocket, probes, metrics, API docs and the dashboard, over one
Gateway.

Open without the token: the dashboard page and its static files, the bundled docs assets,
POST /api/v1/login, GET /api/v1/session, and the liveness and readiness verdicts (status code
and one word - no details). Everything else needs the token when one is set: the API, the
websocket, /metrics, /docs, /redoc, /openapi.json and the probes' details."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request, WebSocket
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from services.gateway.alerts_api import alerts_router
from services.gateway.auth import (
    COOKIE,
    QUERY_TOKEN_HINT,
    LoginLimiter,
    authorized,
    session_value,
    token_in_query,
    token_matches,
)
from services.gateway.consumer import BlockConsumer
from services.gateway.core import Gateway
from services.gateway.history import history_router
from services.gateway.hub import HubLimits
from services.gateway.limits import BodySizeLimit
from services.gateway.loglimit import LogLimiter
from services.gateway.metrics import GatewayMetrics
from services.gateway.output import OutputWriter
from services.gateway.runclock import follow_run
from services.gateway.security import (
    ABORT_KEY,
    Hardening,
    content_security_policy,
    inline_script_hashes,
    origin_allowed,
)
from services.gateway.tasks import BackgroundTasks
from services.gateway.timeline_api import ScorecardGauges, timeline_router
from shared.clock import RunClock, make_clock
from shared.config import Settings
from shared.document import ENGINES, Document, document_json_schema
from shared.history.store import HistoryStore, open_engine
from shared.logs import get_logger

log = get_logger("gateway")
STATIC_DIR = Path(__file__).parent / "static"
DOCS_ASSETS_DIR = Path(__file__).parent / "docs_assets"
MAX_BODY_BYTES = 64 * 1024
JSON = "application/json"
# Declares the bearer header in the OpenAPI document; auth.authorized does the checking.
BEARER = HTTPBearer(auto_error=False, description="the API token (AEGIS_API_TOKEN)")
SWAGGER_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>AegisMatrix gateway - API docs</title>
<link rel="icon" href="/docs-assets/favicon-32x32.png">
<link rel="stylesheet" href="/docs-assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs-assets/swagger-ui-bundle.js"></script>
<script src="/docs-assets/swagger-init.js"></script></body></html>
"""
REDOC_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>AegisMatrix gateway - API reference</title>
<link rel="icon" href="/docs-assets/favicon-32x32.png"></head>
<body><redoc spec-url="/openapi.json"></redoc>
<script src="/docs-assets/redoc.standalone.js"></script></body></html>
"""


class Login(BaseModel):
    token: str


def create_app(
    settings: Settings,
    *,
    tick_s: float = 0.5,
    health_poll_s: float = 2.0,
    wall_ms: Callable[[], int] | None = None,
) -> FastAPI:
    """``tick_s``: how often stale flags are re-checked (wall clock); ``health_poll_s``: how
    often worker health reports are read; ``wall_ms``: the wall clock (epoch ms; a test's
    fixed moment)."""
    metrics = GatewayMetrics()
    writer = OutputWriter(settings.output_path, metrics)
    event_clock = settings.clock == "event"
    limits = HubLimits(
        queue_size=settings.ws_queue_size,
        heartbeat_s=settings.ws_heartbeat_s,
        resync_interval_s=settings.ws_resync_interval_s,
        send_timeout_s=settings.ws_send_timeout_s,
    )
    # the wall clock follows the feed: a replay is judged on its own time (shared.clock)
    clock = make_clock("event") if event_clock else RunClock(wall_ms)
    gateway = Gateway(clock, event_clock, metrics, writer, limits)
    hub = gateway.hub
    consumer = BlockConsumer(settings, gateway, metrics)
    background = BackgroundTasks()
    token = settings.api_token
    login_limiter = LoginLimiter()
    log_limit = LogLimiter()
    cors_origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]

    async def every(interval_s: float, name: str, step: Callable[[], object]) -> None:
        """Run ``step`` forever; an exception is logged and the loop goes on (a bad block
        must not end staleness ticks or heartbeats)."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                step()
            except Exception as exc:
                if (left_out := log_limit.allow(name)) is not None:
                    error = f"{type(exc).__name__}: {exc}"
                    log.error(f"{name}_failed", error=error, left_out=left_out, exc_info=exc)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        background.start("block_consumer", consumer.run())
        background.start("health_poller", consumer.poll_health(health_poll_s))
        background.start(
            "heartbeats",
            every(
                settings.ws_heartbeat_s,
                "heartbeat",
                lambda: hub.heartbeat(gateway.state.epoch, gateway.state.sequence),
            ),
        )
        background.start(
            "ws_watchdog",
            every(min(1.0, settings.ws_send_timeout_s / 4), "ws_watchdog", hub.drop_stuck),
        )
        background.start("output_writer", writer.run())
        if not event_clock:
            background.start("ticker", every(tick_s, "tick", gateway.tick))
            assert isinstance(clock, RunClock)
            background.start("run_clock", follow_run(consumer.client, clock, health_poll_s))
        log.info(
            "gateway_started",
            output=str(settings.output_path),
            clock=settings.clock,
            auth=token is not None,
            epoch=gateway.state.epoch,
        )
        try:
            yield
        finally:
            await background.stop()
            await writer.flush()
            await consumer.close()
            log.info("gateway_stopped", epoch=gateway.state.epoch, sequence=gateway.state.sequence)

    app = FastAPI(
        title="AegisMatrix gateway",
        version="1",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.gateway = gateway
    app.state.metrics = metrics
    app.state.consumer = consumer
    app.state.background = background
    if cors_origins:  # none configured: same-origin only, no CORS headers at all
        app.add_middleware(
            CORSMiddleware,
            allow_origins=cors_origins,
            allow_methods=["GET"],
            allow_headers=["Authorization"],
        )
    app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)
    csp = content_security_policy(inline_script_hashes(STATIC_DIR.glob("*.html")))
    app.add_middleware(Hardening, csp=csp)  # last added = outermost

    def require_token(
        request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]
    ) -> None:
        """The bearer scheme only declares the header in the OpenAPI document (Swagger's
        Authorize button); ``authorized`` checks the header or the session cookie."""
        if token is not None and token_in_query(request):
            raise HTTPException(401, QUERY_TOKEN_HINT, headers={"WWW-Authenticate": "Bearer"})
        if not authorized(request, token):
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
    history_store = HistoryStore(open_engine(settings.history_url))
    app.include_router(alerts_router(consumer.client, history_store, api))
    scorecard_gauges = ScorecardGauges(history_store, metrics)
    app.include_router(timeline_router(history_store, api))

    @app.post("/api/v1/login")
    def login(body: Login, request: Request) -> JSONResponse:
        """Exchange the token for an HttpOnly session cookie (browsers: the dashboard and the
        docs). JSON only, so a cross-site form cannot post here."""
        if not request.headers.get("content-type", "").startswith(JSON):
            raise HTTPException(415, 'send the token as JSON: {"token": "..."}')
        if token is None:
            return JSONResponse({"authenticated": True, "auth_required": False})
        peer = request.client.host if request.client else ""
        if not token_matches(body.token, token):  # the right token is never locked out
            wait_s = login_limiter.retry_after_s(peer)
            if wait_s > 0:
                raise HTTPException(
                    429, "too many failed logins", headers={"Retry-After": str(int(wait_s) + 1)}
                )
            login_limiter.failed(peer)
            if (left_out := log_limit.allow("login_refused")) is not None:
                log.warning("login_refused", peer=peer, left_out=left_out)
            raise HTTPException(401, "wrong token")
        response = JSONResponse({"authenticated": True, "auth_required": True})
        response.set_cookie(
            COOKIE,
            session_value(token),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return response

    @app.post("/api/v1/logout")
    def logout() -> JSONResponse:
        response = JSONResponse({"authenticated": False})
        response.delete_cookie(COOKIE, path="/")
        return response

    @app.get("/api/v1/session")
    def session(request: Request) -> JSONResponse:
        """Whether this client may read the document (the dashboard asks before connecting)."""
        return JSONResponse(
            {"auth_required": token is not None, "authenticated": authorized(request, token)}
        )

    @app.websocket("/ws")
    async def websocket(ws: WebSocket) -> None:
        refusal = None
        if not origin_allowed(ws, cors_origins):
            refusal = "origin"
        elif token is not None and token_in_query(ws):
            refusal = "token_in_query"
        elif not authorized(ws, token):
            refusal = "unauthorized"
        if refusal is not None:
            metrics.ws_refused.labels(refusal).inc()
            if (left_out := log_limit.allow(f"ws_refused:{refusal}")) is not None:
                origin = ws.headers.get("origin")
                log.warning("ws_refused", reason=refusal, origin=origin, left_out=left_out)
            await ws.close(code=1008)  # before accept: the handshake gets HTTP 403
            return
        await ws.accept()
        await hub.serve(ws, ws.scope.get(ABORT_KEY))

    @app.get("/healthz", include_in_schema=False)
    def healthz(request: Request) -> JSONResponse:
        """Liveness: fails once a background task has died (only a restart brings it back).
        Details (which task, the output file) only for an authorised caller."""
        status = "alive" if background.healthy else "failed"
        body: dict[str, Any] = {"status": status}
        if authorized(request, token):
            body |= {"failed_tasks": sorted(background.failed), "output": writer.status()}
        return JSONResponse(body, status_code=200 if background.healthy else 503)

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> JSONResponse:
        """Ready when Redis answers, every task runs, blocks are in and none is stale, no feed
        is down and the output file is being written; otherwise the reasons (authorised)."""
        redis_ok = await consumer.ping()
        failed = sorted(background.failed)
        reasons = gateway.readiness_problems()
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

    @app.get("/metrics", include_in_schema=False, dependencies=api)
    def get_metrics() -> Response:
        scorecard_gauges.refresh()
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/openapi.json", include_in_schema=False, dependencies=api)
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=api)
    def swagger() -> HTMLResponse:
        """Swagger UI from the bundled swagger-ui-dist (no CDN)."""
        return HTMLResponse(SWAGGER_PAGE)

    @app.get("/redoc", include_in_schema=False, dependencies=api)
    def redoc() -> HTMLResponse:
        """ReDoc from the bundled standalone build (no CDN)."""
        return HTMLResponse(REDOC_PAGE)

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.mount("/docs-assets", StaticFiles(directory=DOCS_ASSETS_DIR), name="docs-assets")
    return app
