"""The browser session: POST /api/v1/login exchanges the token for an HttpOnly cookie (the
dashboard and the docs), /api/v1/logout drops it, GET /api/v1/session says whether this client
may read the document. Open without the token."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.gateway.auth import COOKIE, LoginLimiter, authorized, session_value, token_matches
from services.gateway.loglimit import LogLimiter
from shared.logs import get_logger

log = get_logger("gateway")
JSON = "application/json"


class Login(BaseModel):
    token: str


def session_router(token: str | None, log_limit: LogLimiter) -> APIRouter:
    router = APIRouter()
    login_limiter = LoginLimiter()

    @router.post("/api/v1/login")
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

    @router.post("/api/v1/logout")
    def logout() -> JSONResponse:
        response = JSONResponse({"authenticated": False})
        response.delete_cookie(COOKIE, path="/")
        return response

    @router.get("/api/v1/session")
    def session(request: Request) -> JSONResponse:
        """Whether this client may read the document (the dashboard asks before connecting)."""
        return JSONResponse(
            {"auth_required": token is not None, "authenticated": authorized(request, token)}
        )

    return router
