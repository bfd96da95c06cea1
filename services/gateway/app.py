"""The FastAPI app: REST, websocket, probes, metrics, API docs and the dashboard, over one
Gateway. Each group of routes is its own router (document_api, session_api, probes, pages,
history, alerts_api, timeline_api); this module wires them to one set of parts and runs the
background tasks for the app's lifetime.

Open without the token: the dashboard page and its static files, the bundled docs assets,
POST /api/v1/login, GET /api/v1/session, and the liveness and readiness verdicts (status code
and one word - no details). Everything else needs the token when one is set: the API, the
websocket, /metrics, /docs, /redoc, /openapi.json and the probes' details."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles

from services.gateway.alerts_api import alerts_router
from services.gateway.auth import QUERY_TOKEN_HINT, authorized, token_in_query
from services.gateway.consumer import BlockConsumer
from services.gateway.core import Gateway
from services.gateway.document_api import document_router, with_document_schema
from services.gateway.history import history_router
from services.gateway.hub import HubLimits
from services.gateway.limits import BodySizeLimit
from services.gateway.loglimit import LogLimiter
from services.gateway.metrics import GatewayMetrics
from services.gateway.output import OutputWriter
from services.gateway.pages import DOCS_ASSETS_DIR, STATIC_DIR, pages_router
from services.gateway.probes import probes_router
from services.gateway.runclock import follow_run
from services.gateway.security import Hardening, content_security_policy, inline_script_hashes
from services.gateway.session_api import session_router
from services.gateway.tasks import SupervisedTasks
from services.gateway.timeline_api import ScorecardGauges, timeline_router
from shared.config import Settings
from shared.history.store import HistoryStore, open_engine
from shared.logs import get_logger
from shared.market.clock import Clock, RunClock, make_clock

log = get_logger("gateway")
MAX_BODY_BYTES = 64 * 1024
CLOSE_TIMEOUT_S = 5.0
# Declares the bearer header in the OpenAPI document; auth.authorized does the checking.
BEARER = HTTPBearer(auto_error=False, description="the API token (AEGIS_API_TOKEN)")
__all__ = ["DOCS_ASSETS_DIR", "STATIC_DIR", "create_app"]


@dataclass
class Parts:
    """What the routes and the background tasks share."""

    settings: Settings
    clock: Clock
    gateway: Gateway
    consumer: BlockConsumer
    writer: OutputWriter
    tasks: SupervisedTasks
    log_limit: LogLimiter


async def every(
    interval_s: float, name: str, step: Callable[[], object], log_limit: LogLimiter
) -> None:
    """Run ``step`` forever; an exception is logged and the loop goes on (a bad block must not
    end staleness ticks or heartbeats)."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            step()
        except Exception as exc:
            if (left_out := log_limit.allow(name)) is not None:
                error = f"{type(exc).__name__}: {exc}"
                log.error(f"{name}_failed", error=error, left_out=left_out, exc_info=exc)


def start_tasks(parts: Parts, tick_s: float, health_poll_s: float) -> None:
    """The gateway's endless loops, each supervised (a task that ends turns the probes red)."""
    settings, gateway, tasks, limit = parts.settings, parts.gateway, parts.tasks, parts.log_limit
    hub = gateway.hub
    tasks.start("block_consumer", parts.consumer.run())
    tasks.start("health_poller", parts.consumer.poll_health(health_poll_s))

    def heartbeat() -> None:
        hub.heartbeat(gateway.state.epoch, gateway.state.sequence)

    tasks.start("heartbeats", every(settings.ws_heartbeat_s, "heartbeat", heartbeat, limit))
    watchdog_s = min(1.0, settings.ws_send_timeout_s / 4)
    tasks.start("ws_watchdog", every(watchdog_s, "ws_watchdog", hub.drop_stuck, limit))
    tasks.start("output_writer", parts.writer.run())
    if isinstance(parts.clock, RunClock):  # the wall clock, following the feed's run
        tasks.start("ticker", every(tick_s, "tick", gateway.tick, limit))
        tasks.start("run_clock", follow_run(parts.consumer.client, parts.clock, health_poll_s))


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
    # the wall clock follows the feed: a replay is judged on its own time (shared.market.clock)
    clock = make_clock("event") if event_clock else RunClock(wall_ms)
    gateway = Gateway(clock, event_clock, metrics, writer, limits)
    consumer = BlockConsumer(settings, gateway, metrics)
    parts = Parts(settings, clock, gateway, consumer, writer, SupervisedTasks(), LogLimiter())
    token = settings.api_token
    cors_origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        start_tasks(parts, tick_s, health_poll_s)
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
            await parts.tasks.stop()
            await writer.flush()
            try:  # a connection stuck mid-command must not hold the shutdown
                await asyncio.wait_for(consumer.close(), CLOSE_TIMEOUT_S)
            except TimeoutError:
                log.error("redis_close_timed_out", after_s=CLOSE_TIMEOUT_S)
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
    app.state.tasks = parts.tasks
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
    history_store = HistoryStore(open_engine(settings.history_url))
    scorecard = ScorecardGauges(history_store, metrics)
    for router in (
        document_router(gateway, metrics, token, cors_origins, parts.log_limit, api),
        history_router(consumer.client, api),
        alerts_router(consumer.client, history_store, api),
        timeline_router(history_store, api),
        session_router(token, parts.log_limit),
        probes_router(gateway, consumer, parts.tasks, writer, metrics, scorecard, token, api),
        pages_router(api),
    ):
        app.include_router(router)
    with_document_schema(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.mount("/docs-assets", StaticFiles(directory=DOCS_ASSETS_DIR), name="docs-assets")
    return app
