"""Optional token auth for the API and the websocket: ``Authorization: Bearer <token>`` or
``?token=<token>``. Off when settings.api_token is None."""

from __future__ import annotations

import secrets

from starlette.requests import HTTPConnection


def presented_token(conn: HTTPConnection) -> str | None:
    header = conn.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    return conn.query_params.get("token")


def authorized(conn: HTTPConnection, expected: str | None) -> bool:
    if expected is None:
        return True
    token = presented_token(conn)
    return token is not None and secrets.compare_digest(token.encode(), expected.encode())
