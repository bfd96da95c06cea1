"""Issue 10 finding 12 and issue 13's probes: what is open and what needs the token, login by
cookie (never a token in a URL), same-origin by default, the websocket Origin check, security
headers, API docs from bundled assets, binary frames, and a client that never reads."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import socket
import struct
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import httpx
import orjson
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from services.gateway.app import STATIC_DIR
from services.gateway.auth import LoginLimiter
from shared.config import Settings
from tests.block_factory import AS_OF, all_blocks, bulky, make_block
from tests.gateway_harness import RunningGateway, publish, wait_for

TOKEN = "s3cret-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
TIMEOUT = 5.0


@pytest.fixture()
def secured(settings: Settings) -> Iterator[RunningGateway]:
    with RunningGateway(settings.model_copy(update={"api_token": TOKEN})) as gw:
        yield gw


def metric(gw: RunningGateway, name: str, **labels: str) -> float:
    text = httpx.get(gw.url + "/metrics", headers=BEARER).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return 0.0


async def recv(ws: Any, timeout: float = TIMEOUT) -> dict[str, Any]:
    return orjson.loads(await asyncio.wait_for(ws.recv(), timeout))


# What needs the token --------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/metrics", "/docs", "/redoc", "/openapi.json"])
def test_metrics_and_docs_need_the_token(secured: RunningGateway, path: str) -> None:
    assert httpx.get(secured.url + path).status_code == 401
    assert httpx.get(secured.url + path, headers={"Authorization": "Bearer no"}).status_code == 401
    assert httpx.get(secured.url + path, headers=BEARER).status_code == 200


def test_probes_without_the_token_say_one_word_and_leak_nothing(
    secured: RunningGateway,
) -> None:
    alive = httpx.get(secured.url + "/healthz")
    assert alive.status_code == 200 and alive.json() == {"status": "alive"}
    ready = httpx.get(secured.url + "/readyz")
    assert ready.status_code == 503 and ready.json() == {"ready": False}
    detailed = httpx.get(secured.url + "/readyz", headers=BEARER).json()
    assert detailed["reasons"] == ["no blocks yet"] and detailed["redis"] is True
    assert httpx.get(secured.url + "/healthz", headers=BEARER).json()["output"]["ok"] is True


def test_login_sets_an_httponly_strict_cookie_that_opens_the_api_and_the_websocket(
    secured: RunningGateway,
) -> None:
    login = secured.url + "/api/v1/login"
    assert httpx.post(login, json={"token": "wrong"}).status_code == 401
    assert httpx.post(login, data={"token": TOKEN}).status_code in (415, 422)  # no form posts
    assert httpx.get(secured.url + "/api/v1/session").json() == {
        "auth_required": True,
        "authenticated": False,
    }
    with httpx.Client(base_url=secured.url) as browser:
        response = browser.post("/api/v1/login", json={"token": TOKEN})
        assert response.status_code == 200
        cookie = response.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
        assert TOKEN not in cookie  # an HMAC of the token, not the token
        assert browser.get("/api/v1/session").json()["authenticated"] is True
        assert browser.get("/api/v1/document").status_code == 200
        assert browser.get("/metrics").status_code == 200
        session = browser.cookies["aegis_session"]
        browser.post("/api/v1/logout")
        assert browser.get("/api/v1/document").status_code == 401

    async def over_websocket() -> str:
        async with websockets.connect(
            secured.ws_url, additional_headers={"Cookie": f"aegis_session={session}"}
        ) as ws:
            return (await recv(ws))["type"]

    assert asyncio.run(over_websocket()) == "snapshot"
    # the session value is not a bearer token
    headers = {"Authorization": f"Bearer {session}"}
    assert httpx.get(secured.url + "/api/v1/document", headers=headers).status_code == 401


def test_token_guessing_is_slowed_per_client(secured: RunningGateway) -> None:
    login = secured.url + "/api/v1/login"
    for _ in range(5):
        assert httpx.post(login, json={"token": "guess"}).status_code == 401
    blocked = httpx.post(login, json={"token": "guess"})
    assert blocked.status_code == 429 and 1 <= int(blocked.headers["retry-after"]) <= 61
    # the right token is never locked out (a shared proxy: one user's typos, everyone's door)
    assert httpx.post(login, json={"token": TOKEN}).status_code == 200
    assert httpx.post(login, json={"token": "guess"}).status_code == 429  # guessing still is
    assert httpx.get(secured.url + "/api/v1/document", headers=BEARER).status_code == 200


def test_login_limiter_forgets_failures_after_its_window() -> None:
    limiter = LoginLimiter(failures_allowed=2, window_s=0.2)
    limiter.failed("10.0.0.1")
    assert limiter.retry_after_s("10.0.0.1") == 0
    limiter.failed("10.0.0.1")
    assert 0 < limiter.retry_after_s("10.0.0.1") <= 0.2
    assert limiter.retry_after_s("10.0.0.2") == 0  # per address
    wait_for(lambda: limiter.retry_after_s("10.0.0.1") == 0, 2, "the window to pass")
    assert limiter._failures == {}  # nothing kept for addresses that stopped failing


def test_without_a_token_configured_everything_stays_open(settings: Settings) -> None:
    with RunningGateway(settings) as gw:
        assert httpx.get(gw.url + "/metrics").status_code == 200
        assert httpx.get(gw.url + "/docs").status_code == 200
        assert "reasons" in httpx.get(gw.url + "/readyz").json()


# Browser-facing headers ------------------------------------------------------------------
def inline_script_hashes() -> set[str]:
    html = (STATIC_DIR / "index.html").read_text()
    bodies = re.findall(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", html, re.S)
    return {
        "'sha256-" + base64.b64encode(hashlib.sha256(b.encode()).digest()).decode() + "'"
        for b in bodies
    }


def test_security_headers_on_every_response(secured: RunningGateway) -> None:
    for path, headers in (("/", {}), ("/api/v1/document", BEARER), ("/healthz", {})):
        response = httpx.get(secured.url + path, headers=headers)
        csp = response.headers["content-security-policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["frame-ancestors"] == "'none'"
        assert directives["object-src"] == "'none'" and directives["base-uri"] == "'none'"
        script_src = set(directives["script-src"].split())
        assert script_src == {"'self'", *inline_script_hashes()}  # no 'unsafe-inline'
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["x-frame-options"] == "DENY"


def test_cors_is_same_origin_unless_origins_are_configured(settings: Settings) -> None:
    allowed = "https://desk.example.test"
    with RunningGateway(settings.model_copy(update={"cors_origins": allowed})) as gw:
        ok = httpx.get(gw.url + "/api/v1/document", headers={"Origin": allowed})
        assert ok.headers["access-control-allow-origin"] == allowed
        other = httpx.get(gw.url + "/api/v1/document", headers={"Origin": "https://evil.test"})
        assert "access-control-allow-origin" not in other.headers


async def test_websocket_checks_the_origin(settings: Settings) -> None:
    with RunningGateway(settings) as gw:
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(gw.ws_url, origin="http://evil.test"):  # type: ignore[arg-type]
                pass
        assert refused.value.response.status_code == 403
        for origin in (f"http://127.0.0.1:{gw.port}", None):  # same origin; not a browser
            async with websockets.connect(gw.ws_url, origin=origin) as ws:  # type: ignore[arg-type]
                assert (await recv(ws))["type"] == "snapshot"
        refusals = await asyncio.to_thread(
            metric, gw, "aegis_gateway_websocket_refused_total", reason="origin"
        )
        assert refusals == 1.0


# API docs offline ------------------------------------------------------------------------
class References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for key in ("src", "href", "spec-url"):
            if found.get(key):
                self.urls.append(found[key] or "")
        self._in_script = tag == "script" and "src" not in found

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_api_docs_are_served_from_bundled_assets(secured: RunningGateway, page: str) -> None:
    html = httpx.get(secured.url + page, headers=BEARER)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    refs = References()
    refs.feed(html.text)
    assert refs.urls and refs.inline_scripts == 0  # the CSP would block inline scripts
    for url in refs.urls:
        assert url.startswith("/") and not url.startswith("//"), f"external reference {url}"
        response = httpx.get(secured.url + url, headers=BEARER)
        assert response.status_code == 200, url
        assert len(response.content) > 100, url
    assert "http://" not in html.text and "https://" not in html.text
    spec = httpx.get(secured.url + "/openapi.json", headers=BEARER).json()
    assert "/api/v1/document" in spec["paths"] and "/metrics" not in spec["paths"]
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    document = spec["paths"]["/api/v1/document"]["get"]
    assert document["security"] == [{"HTTPBearer": []}] and "parameters" not in document


def test_bundled_docs_assets_ship_their_licences() -> None:
    from services.gateway.app import DOCS_ASSETS_DIR

    names = {p.name for p in DOCS_ASSETS_DIR.iterdir()}
    assert {"swagger-ui-dist.LICENSE", "swagger-ui-dist.NOTICE", "redoc.LICENSE"} <= names
    assert "Apache License" in (DOCS_ASSETS_DIR / "swagger-ui-dist.LICENSE").read_text()
    assert "MIT License" in (DOCS_ASSETS_DIR / "redoc.LICENSE").read_text()


# Websocket abuse -------------------------------------------------------------------------
async def test_a_binary_frame_closes_the_connection_cleanly(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with RunningGateway(settings) as gw:
        async with websockets.connect(gw.ws_url) as ws:
            assert (await recv(ws))["type"] == "snapshot"
            await ws.send(b"\x00\x01binary")
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), TIMEOUT)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1003
        async with websockets.connect(gw.ws_url) as ws:  # the gateway serves on
            assert (await recv(ws))["type"] == "snapshot"
        assert (
            await asyncio.to_thread(
                metric, gw, "aegis_gateway_websocket_refused_total", reason="binary_frame"
            )
            == 1.0
        )
    assert not [r for r in caplog.records if r.exc_info or "Exception in ASGI" in r.getMessage()]


class NeverReads:
    """A raw websocket client that never reads (tiny receive buffer) but keeps sending."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(
            b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101")

    def send_text(self, text: bytes) -> None:
        """One masked text frame (clients must mask)."""
        mask = b"\x01\x02\x03\x04"
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(text))
        self.sock.sendall(struct.pack("!BB", 0x81, 0x80 | len(text)) + mask + payload)


@pytest.mark.slow
def test_a_client_that_never_reads_but_keeps_sending_is_dropped_at_the_give_up(
    settings: Settings,
) -> None:
    """Closing politely would wait for the full send buffer to drain - forever, as the peer
    never reads; the gateway aborts the connection, so the client's next send is reset."""
    quick = settings.model_copy(update={"ws_send_timeout_s": 1.0, "ws_queue_size": 4})
    publish(quick, *all_blocks())
    bulk = bulky(20_000)
    with RunningGateway(quick) as gw:
        wait_for(lambda: gw.app.state.gateway.state.sequence == 4, TIMEOUT, "blocks")
        client = NeverReads(gw.port)
        client.sock.settimeout(0.2)
        wait_for(lambda: len(gw.app.state.gateway.hub.clients) == 1, TIMEOUT, "connected")
        started = time.monotonic()
        reset_after = None
        i = 0
        while time.monotonic() - started < 20:
            i += 1
            publish(quick, make_block("market", as_of=AS_OF + 60 * i, extra=bulk))
            try:
                client.send_text(b'{"type":"hello"}')
            except (ConnectionResetError, BrokenPipeError):
                reset_after = time.monotonic() - started
                break
            except TimeoutError:
                pass  # our own send buffer is full: the gateway is not reading either
        assert reset_after is not None, "the connection stayed open past the give-up"
        assert metric(gw, "aegis_gateway_websocket_refused_total", reason="send_timeout") == 1
        assert not gw.app.state.gateway.hub.clients
        assert gw.app.state.tasks.healthy
