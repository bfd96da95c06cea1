"""The pages: the dashboard (open), and the API reference (Swagger UI, ReDoc and the OpenAPI
document, from bundled assets: no CDN; token when one is set)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fastapi import APIRouter, Request, params
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

STATIC_DIR = Path(__file__).parent / "static"
DOCS_ASSETS_DIR = Path(__file__).parent / "docs_assets"
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


def pages_router(dependencies: Sequence[params.Depends]) -> APIRouter:
    router = APIRouter()
    api = list(dependencies)

    @router.get("/openapi.json", include_in_schema=False, dependencies=api)
    def openapi(request: Request) -> JSONResponse:
        return JSONResponse(request.app.openapi())

    @router.get("/docs", include_in_schema=False, dependencies=api)
    def swagger() -> HTMLResponse:
        """Swagger UI from the bundled swagger-ui-dist (no CDN)."""
        return HTMLResponse(SWAGGER_PAGE)

    @router.get("/redoc", include_in_schema=False, dependencies=api)
    def redoc() -> HTMLResponse:
        """ReDoc from the bundled standalone build (no CDN)."""
        return HTMLResponse(REDOC_PAGE)

    @router.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    return router
