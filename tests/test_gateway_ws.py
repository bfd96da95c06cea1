"""The websocket: snapshot then updates, resync on a gap, slow clients, heartbeats, auth,
stale flags pushed as wall time passes."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from typing import Any

import httpx
import orjson
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from shared.config import Settings
from tests.block_factory import AS_OF, all_blocks, bulky, make_block
from tests.gateway_harness import RunningGateway, publish

TIMEOUT = 5.0


async def recv(ws: Any, timeout: float = TIMEOUT) -> dict[str, Any]:
    return orjson.loads(await asyncio.wait_for(ws.recv(), timeout))


async def recv_type(ws: Any, kind: str, timeout: float = TIMEOUT) -> dict[str, Any]:
    """Next message of one type (heartbeats may come in between)."""
    deadline = time.monotonic() + timeout
    while True:
        message = await recv(ws, max(deadline - time.monotonic(), 0.01))
        if message["type"] == kind:
            return message


def metric(gw: RunningGateway, name: str, **labels: str) -> float:
    text = httpx.get(gw.url + "/metrics").text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return 0.0


async def test_snapshot_then_updates_in_sequence(settings: Settings) -> None:
    publish(settings, *all_blocks())
    with RunningGateway(settings) as gw:
        await asyncio.to_thread(_wait_sequence, gw, 4)
        async with websockets.connect(gw.ws_url) as ws:
            assert (await recv(ws))["sequence"] == 4
            publish(settings, make_block("market", as_of=AS_OF + 60, spot=25_650.5))
            update = await recv_type(ws, "update")
            assert update["sequence"] == 5
            assert set(update["blocks"]) == {"market"}
            assert update["blocks"]["market"]["spot"] == 25_650.5
            assert "health" not in update  # only sent when it changed
            publish(settings, make_block("market", as_of=AS_OF + 60, spot=25_650.5))  # duplicate
            publish(settings, make_block("seller", as_of=AS_OF + 60))
            update = await recv_type(ws, "update")
            assert update["sequence"] == 6 and set(update["blocks"]) == {"seller"}


async def test_first_message_is_the_full_document(settings: Settings) -> None:
    publish(settings, *all_blocks())
    with RunningGateway(settings) as gw:
        await asyncio.to_thread(_wait_sequence, gw, 4)
        async with websockets.connect(gw.ws_url) as ws:
            snapshot = await recv(ws)
            assert snapshot["type"] == "snapshot" and snapshot["sequence"] == 4
            document = snapshot["document"]
            assert document["sequence"] == 4
            assert all(document[e]["as_of"] for e in ("market", "direction", "seller", "buyer"))


async def test_client_gap_resync_returns_a_snapshot(settings: Settings) -> None:
    publish(settings, *all_blocks())
    with RunningGateway(settings) as gw:
        await asyncio.to_thread(_wait_sequence, gw, 4)
        async with websockets.connect(gw.ws_url) as ws:
            assert (await recv(ws))["type"] == "snapshot"
            publish(settings, make_block("buyer", as_of=AS_OF + 60))
            assert (await recv_type(ws, "update"))["sequence"] == 5
            await ws.send(orjson.dumps({"type": "resync"}).decode())
            again = await recv_type(ws, "snapshot")
            assert again["sequence"] == 5
            assert again["document"]["buyer"]["as_of"] == "2025-06-30T09:31:00.000Z"
        assert metric(gw, "aegis_gateway_websocket_resyncs_total", reason="client_gap") == 1


def _wait_sequence(gw: RunningGateway, sequence: int) -> None:
    from tests.gateway_harness import wait_for

    wait_for(
        lambda: httpx.get(gw.url + "/api/v1/document").json()["sequence"] >= sequence,
        TIMEOUT,
        f"sequence {sequence}",
    )


class RawStuckClient:
    """A websocket client with a tiny receive buffer that stops reading after the handshake,
    so the server's socket to it fills up."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(
            b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(1024)
        assert self.buffer.startswith(b"HTTP/1.1 101")
        self.buffer = self.buffer.split(b"\r\n\r\n", 1)[1]

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def message(self) -> dict[str, Any]:
        """Read one (unfragmented, unmasked) server text frame."""
        head = self._read(2)
        length = head[1] & 0x7F
        if length == 126:
            length = struct.unpack("!H", self._read(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._read(8))[0]
        return orjson.loads(self._read(length))

    def close(self) -> None:
        self.sock.close()


async def test_slow_client_does_not_delay_others_and_is_resynced(settings: Settings) -> None:
    small = settings.model_copy(update={"ws_queue_size": 4})
    publish(small, *all_blocks())
    n = 400  # x 20 kB: more than the kernel buffers (4 MB send buffer) can absorb
    bulk = bulky(20_000)
    with RunningGateway(small) as gw:
        await asyncio.to_thread(_wait_sequence, gw, 4)
        stuck = await asyncio.to_thread(RawStuckClient, gw.port)
        async with websockets.connect(gw.ws_url, max_size=None) as fast:
            assert (await recv(fast))["type"] == "snapshot"
            sequences: list[int] = []
            worst = 0.0
            for first in range(1, n + 1, 4):  # bursts of four, each awaited by the fast client
                burst = [
                    make_block("market", as_of=AS_OF + 60 * i, spot=25_600.0 + i, extra=bulk)
                    for i in range(first, first + 4)
                ]
                started = time.monotonic()
                await asyncio.to_thread(publish, small, *burst)
                while not sequences or sequences[-1] < 4 + first + 3:
                    message = await recv(fast)
                    assert message["type"] != "snapshot", "the fast client never needs a resync"
                    if message["type"] == "update":  # may fold a burst read in one batch
                        sequences += range(message["first_sequence"], message["sequence"] + 1)
                worst = max(worst, time.monotonic() - started)
            assert sequences == list(range(5, 5 + n))  # no gap for the fast client
            assert worst < 1.0, f"a burst took {worst:.3f}s to reach the fast client"
            assert metric(gw, "aegis_gateway_websocket_resyncs_total", reason="slow_client") >= 1
            # once the slow client reads again it catches up through a snapshot, not a backlog
            stuck.sock.settimeout(TIMEOUT)
            latest = await asyncio.to_thread(_read_until_snapshot_of, stuck, 4 + n)
            assert latest["document"]["market"]["spot"] == 25_600.0 + n
        stuck.close()


def _read_until_snapshot_of(client: RawStuckClient, sequence: int) -> dict[str, Any]:
    seen: list[int | None] = []
    for _ in range(10_000):
        message = client.message()
        if message["type"] == "snapshot" and message["sequence"] == sequence:
            return message
        seen.append(message.get("sequence"))
    raise AssertionError(f"no snapshot of {sequence}; saw {seen[-20:]}")


async def test_heartbeats(settings: Settings) -> None:
    fast_beat = settings.model_copy(update={"ws_heartbeat_s": 0.1})
    with RunningGateway(fast_beat) as gw:
        async with websockets.connect(gw.ws_url) as ws:
            assert (await recv(ws))["type"] == "snapshot"
            beat = await recv_type(ws, "heartbeat", timeout=2)
            assert beat["sequence"] == 0 and beat["server_time_ms"] > 0


async def test_websocket_token(settings: Settings) -> None:
    secured = settings.model_copy(update={"api_token": "s3cret"})
    with RunningGateway(secured) as gw:
        for url, headers in (
            (gw.ws_url, None),
            (gw.ws_url + "?token=nope", None),
            (gw.ws_url, {"Authorization": "Bearer nope"}),
            (gw.ws_url + "?token=s3cret", None),  # right token, but in the URL: refused
        ):
            with pytest.raises(websockets.InvalidStatus) as refused:
                async with websockets.connect(url, additional_headers=headers):
                    pass
            assert refused.value.response.status_code == 403
        async with websockets.connect(
            gw.ws_url, additional_headers={"Authorization": "Bearer s3cret"}
        ) as ws:
            assert (await recv(ws))["type"] == "snapshot"


@pytest.mark.slow
async def test_stale_flag_is_pushed_when_blocks_stop(settings: Settings) -> None:
    wall = settings.model_copy(update={"clock": "wall"})
    # A minute of a past session: its next minute was due at +60 s, so the limit sets when
    # it turns stale - about 3 s from now, whatever today's market hours are.
    session_minute = 1_751_257_800  # 2025-06-30 10:00 IST
    limit = int(time.time()) - (session_minute + 60) + 3
    publish(wall, make_block("market", as_of=session_minute, freshness_limit_s=limit))
    with RunningGateway(wall, tick_s=0.05) as gw:
        async with websockets.connect(gw.ws_url) as ws:
            message = await recv(ws)
            document = message["document"]
            if document["market"] is None:  # connected before the block was loaded
                message = await recv_type(ws, "update")
                assert message["blocks"]["market"]["stale"] is False
            else:
                assert document["market"]["stale"] is False
            update = await recv_type(ws, "update", timeout=8)
            assert update["blocks"]["market"]["stale"] is True
