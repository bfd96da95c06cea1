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
import time
from collections import deque

from starlette.requests import HTTPConnection

COOKIE = "aegis_session"
LOGIN_FAILURES_ALLOWED = 5  # per client address and window; then 429 until the window passes
LOGIN_WINDOW_S = 60.0
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


class LoginLimiter:
    """Slows token guessing: at most ``LOGIN_FAILURES_ALLOWED`` failed logins per client
    address per ``LOGIN_WINDOW_S``, then wrong tokens get 429 until the window passes. The
    right token is always accepted: behind a shared proxy one user's typos must not lock
    everyone out, and a token made as the README says (128 random bits) cannot be guessed at
    any rate: the limit keeps failed attempts cheap and quiet, the token is the lock.
    Memory is bounded by the addresses that failed lately."""

    def __init__(
        self, failures_allowed: int = LOGIN_FAILURES_ALLOWED, window_s: float = LOGIN_WINDOW_S
    ) -> None:
        self.failures_allowed = failures_allowed
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}

    def retry_after_s(self, peer: str) -> float:
        """0 when ``peer`` may try now, else how long until it may."""
        now = time.monotonic()
        self._forget_before(now - self.window_s)
        recent = self._failures.get(peer)
        if recent is None or len(recent) < self.failures_allowed:
            return 0.0
        return recent[0] + self.window_s - now

    def failed(self, peer: str) -> None:
        self._failures.setdefault(peer, deque()).append(time.monotonic())

    def _forget_before(self, cutoff: float) -> None:
        for peer in list(self._failures):
            times = self._failures[peer]
            while times and times[0] < cutoff:
                times.popleft()
            if not times:
                del self._failures[peer]
