"""Optional token auth (off when settings.api_token is None), for the API, the websocket,
/metrics, the API docs and probe details.

A client presents the token as ``Authorization: Bearer <token>``; a browser exchanges it once
at ``POST /api/v1/login`` for an HttpOnly, SameSite=Strict session cookie, which its
same-origin requests and websocket then carry. The cookie holds an HMAC of the token, not the
token. A token in the query string is never accepted: URLs end up in logs and histories."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.requests import HTTPConnection

COOKIE = "aegis_session"
QUERY_TOKEN_HINT = (
    "a token in the URL is not accepted; send 'Authorization: Bearer <token>' or log in at"
    " POST /api/v1/login"
)


def session_value(token: str) -> str:
    """What the session cookie holds for ``token``."""
    return hmac.new(token.encode(), b"aegis-session-v1", hashlib.sha256).hexdigest()


def bearer_token(conn: HTTPConnection) -> str | None:
    scheme, _, value = conn.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def token_matches(presented: str, expected: str) -> bool:
    return secrets.compare_digest(presented.encode(), expected.encode())


def authorized(conn: HTTPConnection, expected: str | None) -> bool:
    """True when auth is off, or the bearer token or the session cookie matches."""
    if expected is None:
        return True
    token = bearer_token(conn)
    if token is not None:
        return token_matches(token, expected)
    cookie = conn.cookies.get(COOKIE)
    return cookie is not None and token_matches(cookie, session_value(expected))


def token_in_query(conn: HTTPConnection) -> bool:
    return "token" in conn.query_params
