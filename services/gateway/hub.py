"""Websocket fan-out. Each client has a bounded queue and its own sender task, so a slow
client only ever delays itself: when its queue is full the queue is dropped and replaced by
one "snapshot" marker (drop-and-resync); the sender then sends the current full document.

Messages (JSON text): ``snapshot {epoch, sequence, document}`` on connect and after a resync,
``update {epoch, first_sequence, sequence, blocks, generated_at[, health]}`` per change
(first_sequence = the previous update's sequence + 1; a burst read in one batch is one update
folding its changes first_sequence..sequence), ``heartbeat {epoch, sequence,
server_time_ms}``. A client sends ``{"type": "resync"}`` when it sees a gap and receives a
snapshot.

Limits: a client gets at most one snapshot per ``resync_interval_s`` and resync requests made
while one is pending are folded into it (counted, not logged), so a flood of requests costs
one document per interval. A binary frame closes the connection (1003). A send that has not
completed after ``send_timeout_s`` (the peer stopped reading) drops the client: its sender is
cancelled and its connection aborted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.websockets import WebSocket

from services.gateway.loglimit import LogLimiter
from services.gateway.metrics import GatewayMetrics
from shared.logs import get_logger

log = get_logger("gateway")

SNAPSHOT = object()  # queue marker: send the current full document
Snapshot = Callable[[], tuple[int, str]]  # -> (sequence, serialized snapshot message)
RESYNC_LOG_EVERY_S = 10.0  # one resync log line per client per this many seconds
CLOSE_TIMEOUT_S = 2.0


@dataclass(eq=False)
class Client:
    websocket: WebSocket
    queue: asyncio.Queue[Any]
    abort: Callable[[], bool] | None = None
    sent_sequence: int = -1
    resync_pending: bool = False
    peer: str = ""
    send_started: float | None = None  # monotonic time of the send in progress
    sender: asyncio.Task[None] | None = None
    next_snapshot_at: float = 0.0  # monotonic: no snapshot before this
    resync_logged_at: float = float("-inf")
    resyncs_unlogged: int = 0


@dataclass(frozen=True)
class HubLimits:
    queue_size: int
    heartbeat_s: float
    resync_interval_s: float
    send_timeout_s: float


class Hub:
    def __init__(self, snapshot: Snapshot, metrics: GatewayMetrics, limits: HubLimits) -> None:
        self.snapshot = snapshot
        self.metrics = metrics
        self.limits = limits
        self.clients: set[Client] = set()
        self.log_limit = LogLimiter()

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

    def heartbeat(self, epoch: int, sequence: int) -> None:
        """Queue a heartbeat for idle clients."""
        text = orjson.dumps(
            {
                "type": "heartbeat",
                "epoch": epoch,
                "sequence": sequence,
                "server_time_ms": int(time.time() * 1000),
            }
        ).decode()
        for client in self.clients:
            if not client.resync_pending and client.queue.empty():
                client.queue.put_nowait((None, text, None))

    def drop_stuck(self) -> int:
        """Drop clients stuck in one send longer than the send timeout; returns how many."""
        now = time.monotonic()
        dropped = 0
        for client in list(self.clients):
            started = client.send_started
            if started is None or now - started <= self.limits.send_timeout_s:
                continue
            if (left_out := self.log_limit.allow("stuck")) is not None:
                log.warning(
                    "ws_client_stuck_dropped",
                    peer=client.peer,
                    stuck_s=round(now - started),
                    left_out=left_out,
                )
            self.metrics.ws_refused.labels("send_timeout").inc()
            self._drop(client)
            dropped += 1
        return dropped

    def _drop(self, client: Client) -> None:
        self.clients.discard(client)
        self.metrics.ws_clients.set(len(self.clients))
        if client.sender is not None:
            client.sender.cancel()
        if client.abort is None or not client.abort():
            log.error("ws_abort_unavailable", peer=client.peer)

    def _request_snapshot(self, client: Client, reason: str) -> None:
        if client.resync_pending:
            self.metrics.ws_resync_coalesced.inc()
            return
        while not client.queue.empty():
            client.queue.get_nowait()
        client.resync_pending = True
        client.queue.put_nowait(SNAPSHOT)
        self.metrics.ws_resyncs.labels(reason).inc()
        if reason == "connect":
            return
        now = time.monotonic()
        if now - client.resync_logged_at >= RESYNC_LOG_EVERY_S:
            log.info("ws_resync", peer=client.peer, reason=reason, unlogged=client.resyncs_unlogged)
            client.resync_logged_at, client.resyncs_unlogged = now, 0
        else:
            client.resyncs_unlogged += 1

    # One connection ----------------------------------------------------------------------
    async def serve(self, websocket: WebSocket, abort: Callable[[], bool] | None = None) -> None:
        """Run one accepted websocket until it closes."""
        client = Client(
            websocket,
            asyncio.Queue(maxsize=max(self.limits.queue_size, 2)),
            abort=abort,
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
            receive = asyncio.ensure_future(client.websocket.receive())
            done, _ = await asyncio.wait({receive, sender}, return_when=asyncio.FIRST_COMPLETED)
            if receive not in done:
                receive.cancel()
                await asyncio.gather(receive, return_exceptions=True)
                return
            message = receive.result()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is None:
                self.metrics.ws_refused.labels("binary_frame").inc()
                if (left_out := self.log_limit.allow("binary_frame")) is not None:
                    log.warning("ws_binary_frame_refused", peer=client.peer, left_out=left_out)
                await self._close(client, 1003, "binary frames are not accepted")
                return
            try:
                request = orjson.loads(message["text"])
            except orjson.JSONDecodeError:
                continue
            if isinstance(request, dict) and request.get("type") == "resync":
                self._request_snapshot(client, "client_gap")

    async def _close(self, client: Client, code: int, reason: str) -> None:
        """Close politely if the peer takes the close frame in time, else abort."""
        if client.sender is not None:
            client.sender.cancel()
        try:
            await asyncio.wait_for(client.websocket.close(code, reason), CLOSE_TIMEOUT_S)
        except (TimeoutError, RuntimeError, OSError):  # timed out, or the peer is gone
            if client.abort is not None:
                client.abort()

    async def _send_loop(self, client: Client) -> None:
        while True:
            item = await client.queue.get()
            if item is SNAPSHOT:
                wait_s = client.next_snapshot_at - time.monotonic()
                if wait_s > 0:  # rate limit: requests meanwhile fold into this snapshot
                    await asyncio.sleep(wait_s)
                client.resync_pending = False
                client.next_snapshot_at = time.monotonic() + self.limits.resync_interval_s
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
