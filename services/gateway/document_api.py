"""The document: GET /api/v1/document (as written to aegismatrix.json), one engine's section,
the JSON Schema, and the websocket that pushes every change (services/gateway/hub.py). The
websocket checks the origin and the token itself (a browser cannot send a header there)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, WebSocket, params
from fastapi.responses import JSONResponse, Response

from services.gateway.auth import authorized, token_in_query
from services.gateway.core import Gateway
from services.gateway.loglimit import LogLimiter
from services.gateway.metrics import GatewayMetrics
from services.gateway.security import ABORT_KEY, origin_allowed
from shared.contract.document import ENGINES, document_json_schema, schema_components
from shared.logs import get_logger

log = get_logger("gateway")
COMPONENTS = "#/components/schemas/{name}"
DOCUMENT_RESPONSE = {
    "content": {"application/json": {"schema": {"$ref": COMPONENTS.format(name="Document")}}}
}


def with_document_schema(app: FastAPI) -> None:
    """``app``'s OpenAPI description with the document contract's structs among its
    components (FastAPI describes pydantic models itself; the contract is msgspec's)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            schema.setdefault("components", {}).setdefault("schemas", {}).update(
                schema_components(COMPONENTS)
            )
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]


def document_router(
    gateway: Gateway,
    metrics: GatewayMetrics,
    token: str | None,
    cors_origins: list[str],
    log_limit: LogLimiter,
    dependencies: Sequence[params.Depends],
) -> APIRouter:
    router = APIRouter()
    api = list(dependencies)

    @router.get("/api/v1/document", dependencies=api, responses={200: DOCUMENT_RESPONSE})
    def get_document() -> Response:
        """The whole document, as written to aegismatrix.json."""
        return Response(gateway.document()[1], media_type="application/json")

    @router.get("/api/v1/blocks/{engine}", dependencies=api)
    def get_block(engine: str) -> JSONResponse:
        """One engine's section (market, direction, seller, buyer)."""
        if engine not in ENGINES:
            raise HTTPException(404, f"unknown engine {engine!r}; one of {', '.join(ENGINES)}")
        section = gateway.state.sections.get(engine)
        if section is None:
            raise HTTPException(404, f"no {engine} block yet")
        return JSONResponse(section)

    @router.get("/api/v1/schema", dependencies=api)
    def get_schema() -> JSONResponse:
        """JSON Schema of the document."""
        return JSONResponse(document_json_schema())

    @router.websocket("/ws")
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
        await gateway.hub.serve(ws, ws.scope.get(ABORT_KEY))

    return router
