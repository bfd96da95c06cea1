"""Reads aegis:blocks with plain XREAD (fan-out: every gateway replica sees every block).

Start-up: in one transaction, note the stream's last id and read aegis:blocks:latest; apply
the latest blocks, then XREAD from that id, so nothing published in between is missed (a
block seen twice is a duplicate and ignored). A malformed entry is counted, logged and
dead-lettered once across replicas; it never reaches the document. A valid entry whose
processing raises is counted, logged and skipped: one odd block never stops the stream.
Only connection errors are retried here; anything else ends the task, which the app's
BackgroundTasks reports (background_task_failed, /readyz and /healthz 503).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

import redis

from services.gateway.core import Gateway
from services.gateway.metrics import GatewayMetrics
from shared import streams
from shared.bus import Bus, connect, connect_async
from shared.codec import DecodeError, decode, unpack
from shared.config import Settings
from shared.logs import get_logger
from shared.schemas import SignalBlock
from shared.worker import read_health

log = get_logger("gateway")
SERVICE = "gateway"
DEAD_LETTER_MARK_TTL_S = 7 * 24 * 3600


def parse_latest(raw: bytes) -> SignalBlock:
    """A payload of the latest-blocks hash (msgpack of a SignalBlock, no envelope)."""
    try:
        return SignalBlock.model_validate(unpack(raw))
    except Exception as exc:  # msgpack and pydantic raise several types
        raise DecodeError(f"invalid latest block: {exc}") from exc


class BlockConsumer:
    def __init__(self, settings: Settings, gateway: Gateway, metrics: GatewayMetrics) -> None:
        self.settings = settings
        self.gateway = gateway
        self.metrics = metrics
        self.client = connect_async(settings, socket_timeout_s=settings.block_ms / 1000 + 10)
        self.sync_client = connect(settings, blocking_ms=0)  # follows Sentinel when set
        self.bus = Bus(self.sync_client, settings)
        self.last_id: str | None = None

    async def close(self) -> None:
        await self.client.aclose()
        self.sync_client.close()

    async def ping(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self.client.ping(), 1.0))
        except (redis.RedisError, OSError, TimeoutError):
            return False

    # Block stream ------------------------------------------------------------------------
    async def run(self) -> None:
        backoff = 0.2
        while True:
            try:
                if self.last_id is None:
                    await self._load_latest()
                await self._read()
                backoff = 0.2
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                self.metrics.redis_errors.inc()
                self.last_id = None  # resume from the latest hash: it holds all that matters
                log.warning("redis_unavailable", error=str(exc), retry_in_s=round(backoff, 2))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _load_latest(self) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.xrevrange(streams.BLOCKS, count=1)
            pipe.hgetall(streams.LATEST_BLOCKS)
            newest, latest = await pipe.execute()
        received_at = time.time()
        for engine, raw in sorted(latest.items()):
            try:
                block = parse_latest(raw)
            except DecodeError as exc:
                await self._reject(streams.LATEST_BLOCKS, engine.decode(), raw, str(exc))
                continue
            try:
                self.gateway.on_block(block, received_at)
            except Exception as exc:  # one odd block must not stop the others
                self._entry_failed(streams.LATEST_BLOCKS, engine.decode(), exc)
        self.last_id = newest[0][0].decode() if newest else "0-0"
        log.info("blocks_loaded", engines=len(latest), from_id=self.last_id)

    async def _read(self) -> None:
        assert self.last_id is not None
        reply = await self.client.xread(
            {streams.BLOCKS: self.last_id},
            count=self.settings.read_count,
            block=self.settings.block_ms,
        )
        if not reply:
            return
        received_at = time.time()
        for raw_id, fields in reply[0][1]:
            entry_id = raw_id.decode()
            self.metrics.consumed.inc()
            try:
                await self.handle_entry(entry_id, fields, received_at)
            except Exception as exc:  # skip the entry; the stream goes on
                self._entry_failed(streams.BLOCKS, entry_id, exc)
            self.last_id = entry_id
            await asyncio.sleep(0)  # let client senders drain between the updates of a burst

    async def handle_entry(
        self, entry_id: str, fields: dict[bytes, bytes], received_at: float
    ) -> None:
        try:
            message = decode(fields)
            if not isinstance(message, SignalBlock):
                raise DecodeError(f"{message.TYPE} on the block stream")
        except DecodeError as exc:
            await self._reject(streams.BLOCKS, entry_id, fields.get(b"d", b""), str(exc))
            return
        self.gateway.on_block(message, received_at)

    def _entry_failed(self, origin: str, origin_id: str, exc: Exception) -> None:
        self.metrics.block_errors.inc()
        log.error(
            "block_processing_failed",
            origin=origin,
            origin_id=origin_id,
            error=f"{type(exc).__name__}: {exc}",
            exc_info=exc,
        )

    async def _reject(self, origin: str, origin_id: str, payload: bytes, reason: str) -> None:
        self.metrics.invalid.inc()
        log.error("invalid_block", origin=origin, origin_id=origin_id, reason=reason)
        await asyncio.to_thread(self._dead_letter_once, origin, origin_id, payload, reason)

    def _dead_letter_once(self, origin: str, origin_id: str, payload: bytes, reason: str) -> None:
        """Replicas all see the entry; the first to mark it writes the dead letter."""
        mark = (
            f"{streams.PREFIX}:gateway:deadlettered:"
            + hashlib.blake2b(
                f"{origin}|{origin_id}".encode() + payload, digest_size=12
            ).hexdigest()
        )
        try:
            if not self.sync_client.set(mark, 1, nx=True, ex=DEAD_LETTER_MARK_TTL_S):
                return
            try:
                self.bus.dead_letter(
                    origin_stream=origin,
                    origin_id=origin_id,
                    service=SERVICE,
                    reason=reason,
                    payload=payload,
                )
            except Exception:
                self.sync_client.delete(mark)
                raise
        except redis.RedisError as exc:
            log.error("dead_letter_failed", origin_id=origin_id, error=str(exc))

    # Health -------------------------------------------------------------------------------
    async def poll_health(self, interval_s: float) -> None:
        while True:
            try:
                reports: list[dict[str, Any]] = await asyncio.to_thread(
                    read_health, self.sync_client
                )
                self.gateway.on_health(reports)
            except redis.RedisError as exc:
                log.warning("health_read_failed", error=str(exc))
            except Exception as exc:  # an odd report must not end health polling
                log.error(
                    "health_update_failed", error=f"{type(exc).__name__}: {exc}", exc_info=exc
                )
            await asyncio.sleep(interval_s)
