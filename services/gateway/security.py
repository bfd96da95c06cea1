"""Browser-facing hardening: security headers on every HTTP response, the websocket Origin
check, and a way to drop a websocket whose peer stopped reading.

The Content-Security-Policy allows scripts only from this origin plus the inline scripts of
the dashboard page, by hash (computed from index.html at start-up, so an edited page keeps
working); no framing (frame-ancestors 'none'), no plugins, no base or form hijacking."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.logs import get_logger

log = get_logger("gateway")
ABORT_KEY = "aegis.abort"  # scope key: drops the connection at once (websocket only)
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.S | re.I)


def inline_script_hashes(html_files: Iterable[Path]) -> list[str]:
    """CSP source expressions ('sha256-...') of the inline scripts in ``html_files``."""
    hashes = []
    for path in html_files:
        for body in INLINE_SCRIPT.findall(path.read_text(encoding="utf-8")):
            digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
            hashes.append(f"'sha256-{digest}'")
    return sorted(set(hashes))


def content_security_policy(script_hashes: Iterable[str]) -> str:
    return "; ".join(
        [
            "default-src 'self'",
            " ".join(["script-src 'self'", *script_hashes]),
            "style-src 'self' 'unsafe-inline'",  # tiles and the docs set inline styles
            "img-src 'self' data:",
            "font-src 'self'",
            "connect-src 'self'",
            "worker-src 'self' blob:",  # ReDoc's search runs in a blob worker
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


class Hardening:
    """ASGI middleware (add it last, so it is outermost). HTTP: adds the security headers.
    Websocket: puts an abort function in the scope under ``ABORT_KEY``.

    Why abort: when a peer stops reading, the server's send buffer stays full, and closing the
    connection politely waits for that buffer to drain - forever. uvicorn gives an app no
    handle to its transport, so this takes it from the server's ``send`` callable when it is a
    bound method of the connection protocol (uvicorn's are); tests cover that it works."""

    def __init__(self, app: ASGIApp, csp: str) -> None:
        self.app = app
        self.headers = [
            (b"content-security-policy", csp.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            scope[ABORT_KEY] = transport_aborter(send)
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in self.headers if n not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


def transport_aborter(send: Send) -> Callable[[], bool]:
    """A function that aborts the connection behind ``send``; returns False if it cannot."""

    def abort() -> bool:
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        if transport is None or not hasattr(transport, "abort"):
            return False
        transport.abort()
        return True

    return abort


def origin_allowed(conn: HTTPConnection, allowed: Iterable[str]) -> bool:
    """A websocket's Origin must be this server's own host, or one of ``allowed``. A client
    that sends no Origin is not a browser page (browsers always send it), so cross-site
    websocket hijacking is not possible through it; it is allowed."""
    origin = conn.headers.get("origin")
    if origin is None:
        return True
    if origin in allowed or "*" in allowed:
        return True
    host = conn.headers.get("host")
    return host is not None and urlsplit(origin).netloc.lower() == host.lower()
