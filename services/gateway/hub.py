"""Websocket fan-out. Each client has a bounded queue and its own sender task, so a slow
client only ever delays itself: when its queue is full the queue is dropped and replaced by
one "snapshot" marker (drop-and-resync); the sender then sends the current full document.

Messages (JSON text): ``snapshot {sequence, document}`` on connect and after a resync,
``update {sequence, blocks, generated_at[, health]}`` per change (sequence + 1 each time),
``heartbeat {sequence, server_time_ms}``. A client sends ``{"type": "resync"}`` when it sees
a gap and receives a snapshot.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect

from services.gateway.metrics import GatewayMetrics
from shared.logs import get_logger

log = get_logger("gateway")

SNAPSHOT = object()  # queue marker: send the current full document
Snapshot = Callable[[], tuple[int, str]]  # -> (sequence, serialized snapshot message)


@dataclass(eq=False)
class Client:
    websocket: WebSocket
    queue: asyncio.Queue[Any]
    sent_sequence: int = -1
    resync_pending: bool = False
    peer: str = ""
    send_started: float | None = None  # monotonic time of the send in progress
    sender: asyncio.Task[None] | None = None


class Hub:
    def __init__(
        self, snapshot: Snapshot, metrics: GatewayMetrics, queue_size: int, heartbeat_s: float
    ) -> None:
        self.snapshot = snapshot
        self.metrics = metrics
        self.queue_size = queue_size
        self.heartbeat_s = heartbeat_s
        self.clients: set[Client] = set()

    # Producer side -----------------------------------------------------------------------
    def publish(self, sequence: int, text: str, received_at: float) -> None:
        """Queue one update for every client; never waits."""
        item = (sequence, text, received_at)
        for client in self.clients:
            if client.resync_pending:
                continue  # the snapshot it will get covers this update
            try:
                client.queue.put_nowait(item)
            except asyncio.QueueFull:
                self._request_snapshot(client, "slow_client")

    def heartbeat(self, sequence: int) -> None:
        """Queue a heartbeat for idle clients; close clients stuck in one send too long."""
        stuck_after = max(self.heartbeat_s * 4, 10.0)
        now = time.monotonic()
        for client in self.clients:
            started = client.send_started
            if started is not None and now - started > stuck_after and client.sender:
                log.warning(
                    "ws_client_stuck_closing", peer=client.peer, stuck_s=round(now - started)
                )
                client.sender.cancel()
        text = orjson.dumps(
            {"type": "heartbeat", "sequence": sequence, "server_time_ms": int(time.time() * 1000)}
        ).decode()
        for client in self.clients:
            if not client.resync_pending and client.queue.empty():
                client.queue.put_nowait((None, text, None))

    def _request_snapshot(self, client: Client, reason: str) -> None:
        while not client.queue.empty():
            client.queue.get_nowait()
        client.resync_pending = True
        client.queue.put_nowait(SNAPSHOT)
        self.metrics.ws_resyncs.labels(reason).inc()
        if reason != "connect":
            log.info("ws_resync", peer=client.peer, reason=reason)

    # One connection ----------------------------------------------------------------------
    async def serve(self, websocket: WebSocket) -> None:
        """Run one accepted websocket until it closes."""
        client = Client(
            websocket,
            asyncio.Queue(maxsize=max(self.queue_size, 2)),
            peer=f"{websocket.client.host}:{websocket.client.port}" if websocket.client else "",
        )
        self._request_snapshot(client, "connect")
        self.clients.add(client)
        self.metrics.ws_clients.set(len(self.clients))
        sender = client.sender = asyncio.create_task(self._send_loop(client))
        try:
            await self._receive_loop(client, sender)
        finally:
            self.clients.discard(client)
            self.metrics.ws_clients.set(len(self.clients))
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)

    async def _receive_loop(self, client: Client, sender: asyncio.Task[None]) -> None:
        while not sender.done():
            receive = asyncio.ensure_future(client.websocket.receive_text())
            done, _ = await asyncio.wait({receive, sender}, return_when=asyncio.FIRST_COMPLETED)
            if receive not in done:
                receive.cancel()
                await asyncio.gather(receive, return_exceptions=True)
                return
            try:
                text = receive.result()
            except (WebSocketDisconnect, RuntimeError):
                return
            try:
                request = orjson.loads(text)
            except orjson.JSONDecodeError:
                continue
            if isinstance(request, dict) and request.get("type") == "resync":
                self._request_snapshot(client, "client_gap")

    async def _send_loop(self, client: Client) -> None:
        while True:
            item = await client.queue.get()
            if item is SNAPSHOT:
                client.resync_pending = False
                sequence, text = self.snapshot()
                received_at = None
            else:
                sequence, text, received_at = item
                if sequence is not None and sequence <= client.sent_sequence:
                    continue  # already covered by a snapshot
            client.send_started = time.monotonic()
            try:
                await client.websocket.send_text(text)
            except Exception:  # the peer went away mid-send
                return
            client.send_started = None
            if sequence is not None:
                client.sent_sequence = sequence
            if received_at is not None:
                self.metrics.push_latency.observe(time.time() - received_at)
