"""Reads aegis:blocks with plain XREAD (fan-out: every gateway replica sees every block).

Start-up: in one transaction, note the stream's last id and read aegis:blocks:latest; apply
the latest blocks, then XREAD from that id, so nothing published in between is missed (a
block seen twice is a duplicate and ignored). A malformed entry is counted, logged and
dead-lettered once across replicas; it never reaches the document. A well-formed block the
guard refuses (outside the calendar, ahead of the clock or of the newest input bar) is
dead-lettered with its reason and counted by reason. A refused entry of the latest hash is
also removed from it, if unchanged (otherwise its far as_of would keep every later block out
of the hash), and the engine's newest admissible block is looked up on the stream instead.
A valid entry whose processing raises is counted, logged and skipped: one odd block never
stops the stream. A block that a later admitted block of its engine supersedes within the
read batch is judged by its header only (its data parsed, not built: it never reaches the
document), so its data's validity is not checked; the data of a block shown is decoded
straight into the engine's contract struct, which checks it (contract_check.py).
The admitted blocks of one XREAD batch are applied together (Gateway.on_blocks): one
document change, one update, one serialisation per batch, not per block - a live batch holds
one block, a replay's burst hundreds.
Only connection errors are retried here (shared.bus.lifecycle: backoff with full jitter); anything
else ends the task, which the app's SupervisedTasks report (background_task_failed, /readyz
and /healthz 503).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

import msgspec
import redis

from services.gateway.contract_check import contract_checked
from services.gateway.core import Gateway
from services.gateway.guard import Rejection, bar_close_s, check_block
from services.gateway.loglimit import LogLimiter
from services.gateway.metrics import GatewayMetrics
from shared.bus import replies, streams
from shared.bus.held import held_int
from shared.bus.lifecycle import REDIS_UNAVAILABLE, Backoff, Reconnect
from shared.bus.publish import Bus, connect, connect_async
from shared.bus.run_epoch import EpochWatch
from shared.bus.worker import read_health
from shared.config import Settings
from shared.contract.codec import DecodeError, decode, decode_block_parts, unpack
from shared.contract.schemas import SignalBlock
from shared.logs import get_logger

log = get_logger("gateway")
SERVICE = "gateway"
DEAD_LETTER_MARK_TTL_S = 7 * 24 * 3600
FALLBACK_SCAN_ENTRIES = 10_000  # how far back the stream is searched for a refused latest
INPUT_SERIES = [(s, i) for s in ("NIFTY", "VIX") for i in ("1d", "1m", "5m")]
# Drops an engine's latest block (and its as_of) only if it is still the refused payload.
_DROP_LATEST = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  return 1
end
return 0
"""


def parse_latest(raw: bytes) -> tuple[SignalBlock, bytes]:
    """A payload of the latest-blocks hash (msgpack of a SignalBlock, no envelope): the
    block's header and its data's msgpack (``decode_block_parts``)."""
    parts = decode_block_parts({"t": SignalBlock.TYPE, "v": SignalBlock.VERSION, "d": raw})
    if parts is not None:
        return parts
    try:
        block = SignalBlock.model_validate(unpack(raw))
    except Exception as exc:  # msgpack and pydantic raise several types
        raise DecodeError(f"invalid latest block: {exc}") from exc
    return block, msgspec.msgpack.encode(block.data)


def superseded(blocks: dict[int, SignalBlock]) -> set[int]:
    """The entries (by position in the read batch) a later admitted entry of the same engine
    supersedes: a newer as_of, or the same as_of with another digest (the later one is then
    taken instead, as ``DocumentState.offer_batch`` decides). Their data never reaches the
    document, so it need not be built."""
    out: set[int] = set()
    newest: dict[str, tuple[int, set[str]]] = {}  # engine: later blocks' newest as_of, digests
    for index in sorted(blocks, reverse=True):
        block = blocks[index]
        as_of, digests = newest.get(block.engine, (-1, set()))
        if as_of > block.as_of or (as_of == block.as_of and digests - {block.digest}):
            out.add(index)
        if block.as_of > as_of:
            newest[block.engine] = (block.as_of, {block.digest})
        elif block.as_of == as_of:
            digests.add(block.digest)
    return out


class BlockConsumer:
    def __init__(self, settings: Settings, gateway: Gateway, metrics: GatewayMetrics) -> None:
        self.settings = settings
        self.gateway = gateway
        self.metrics = metrics
        self.client = connect_async(settings, socket_timeout_s=settings.block_ms / 1000 + 10)
        self.sync_client = connect(settings, blocking_ms=0)  # follows Sentinel when set
        self.bus = Bus(self.sync_client, settings)
        self.last_id: str | None = None
        self.epoch = EpochWatch(SERVICE)
        self._data_lost = False
        self.newest_input_s: int | None = None  # close of the newest bar ingest published
        self.log_limit = LogLimiter()
        self._drop_latest = self.client.register_script(_DROP_LATEST)

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
        """Follow the block stream until the task is cancelled (the app's shutdown)."""
        reconnect = Reconnect(
            log,
            Backoff.from_settings(self.settings),
            on_retry=self._redis_lost,
            retry_on=(*REDIS_UNAVAILABLE, OSError),  # asyncio's socket errors as well
        )
        while True:
            await reconnect.call_async(self._step, what=streams.BLOCKS)

    async def _step(self) -> None:
        if self._data_lost:  # what the document holds came from data Redis no longer has
            self._data_lost = False
            self.gateway.restart_document()
            self.last_id = None
        if self.last_id is None:
            await self._load_latest()
        await self._read()

    def _redis_lost(self, exc: BaseException) -> None:
        self.metrics.redis_errors.inc()
        self.last_id = None  # resume from the latest hash: it holds all that matters

    async def _load_latest(self) -> None:
        await self.refresh_newest_input()
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.xrevrange(streams.BLOCKS, count=1)
            pipe.hgetall(streams.LATEST_BLOCKS)
            newest, latest = await pipe.execute()
        last_id = newest[0][0].decode() if newest else "0-0"
        received_at = time.time()
        admitted: list[SignalBlock] = []
        for engine_raw, raw in sorted(latest.items()):
            engine = engine_raw.decode()
            try:
                head, data = parse_latest(raw)
            except DecodeError as exc:
                await self._reject(streams.LATEST_BLOCKS, engine, raw, str(exc))
                continue
            outcome = await self._admit(head) or self._checked(head, data)
            if isinstance(outcome, SignalBlock):
                admitted.append(outcome)
                continue
            await self._refuse(streams.LATEST_BLOCKS, engine, raw, head, outcome)
            await self._drop_refused_latest(engine, raw)
            fallback = await self._newest_admissible(engine, last_id)
            if fallback is not None:
                admitted.append(fallback)
        # event clock: the epoch is the newest loaded as_of, 0 for a replay from the start
        self.gateway.open_epoch(max((b.as_of for b in admitted), default=0))
        for block in admitted:
            try:
                self.gateway.on_block(block, received_at)
            except Exception as exc:  # one odd block must not stop the others
                self._entry_failed(streams.LATEST_BLOCKS, block.engine, exc)
        self.last_id = last_id
        log.info("blocks_loaded", engines=len(admitted), from_id=self.last_id)

    async def _drop_refused_latest(self, engine: str, raw: bytes) -> None:
        keys = [streams.LATEST_BLOCKS, streams.LATEST_BLOCKS + ":as_of"]
        if await self._drop_latest(keys=keys, args=[engine, raw]):
            log.warning("refused_latest_block_removed", engine=engine)

    async def _newest_admissible(self, engine: str, before_id: str) -> SignalBlock | None:
        """The engine's newest block on the stream the guard admits (bounded scan)."""
        upper, scanned = before_id, 0
        while scanned < FALLBACK_SCAN_ENTRIES and upper != "0-0":
            page = await replies.xrevrange_async(self.client, streams.BLOCKS, max=upper, count=500)
            if not page:
                return None
            for raw_id, fields in page:
                scanned += 1
                parts = decode_block_parts(fields)
                if parts is None or parts[0].engine != engine or await self._admit(parts[0]):
                    continue
                shown = self._checked(*parts)
                if isinstance(shown, SignalBlock):
                    log.info("latest_block_from_stream", engine=engine, entry_id=raw_id.decode())
                    return shown
            upper = "(" + page[-1][0].decode()
        return None

    def _checked(self, head: SignalBlock, data: bytes) -> SignalBlock | Rejection:
        """``head``'s whole block, its data decoded into the contract, or why not."""
        return contract_checked(head, data, self.settings.block_max_bytes)

    async def _admit(self, block: SignalBlock) -> Rejection | None:
        """The guard's verdict; a block ahead of the known input re-reads the input first
        (the newest bar may be younger than the last poll)."""
        rejection = self._check(block)
        if rejection is not None and rejection.reason == "ahead_of_input":
            await self.refresh_newest_input()
            rejection = self._check(block)
        return rejection

    def _check(self, block: SignalBlock) -> Rejection | None:
        return check_block(
            block,
            wall_now_s=time.time(),
            newest_input_s=self.newest_input_s,
            tolerance_s=self.settings.block_future_tolerance_s,
        )

    async def refresh_newest_input(self) -> None:
        async with self.client.pipeline(transaction=False) as pipe:
            for symbol, interval in INPUT_SERIES:
                pipe.hget(streams.series_state(symbol, interval), "open_time")
            replies = await pipe.execute()
        closes = [
            bar_close_s(interval, open_time)
            for (symbol, interval), raw in zip(INPUT_SERIES, replies, strict=True)
            if (open_time := held_int(streams.series_state(symbol, interval), "open_time", raw))
            is not None
        ]
        self.newest_input_s = max(closes) if closes else None
        if self.newest_input_s is not None:
            self.metrics.newest_input.set(self.newest_input_s)

    async def _read(self) -> None:
        """One XREAD batch: every entry judged (malformed, refused, admitted and counted), the
        admitted applied as one change. An entry a later admitted block of its engine
        supersedes is judged by its header only (``decode_block_parts``: its data is parsed,
        not built) - in a replay's burst, most entries; a shown entry's data is decoded once,
        straight into the engine's contract struct (``contract_checked``)."""
        assert self.last_id is not None
        entries = await replies.xread_async(
            self.client,
            streams.BLOCKS,
            self.last_id,
            count=self.settings.read_count,
            block=self.settings.block_ms,
        )
        if not entries:
            return
        received_at = time.time()
        admitted: dict[int, SignalBlock] = {}
        data: dict[int, bytes] = {}  # the admitted entries' data, as msgpack
        whole: set[int] = set()  # admitted entries whose data was decoded and checked
        for index, (raw_id, fields) in enumerate(entries):
            self.metrics.consumed.inc()
            parts = await self._judge(raw_id.decode(), fields)
            if parts is not None:
                admitted[index], data[index] = parts
        # the shown entries must be whole; one that fails leaves, and may un-supersede others
        while todo := set(admitted) - superseded(admitted) - whole:
            for index in sorted(todo):
                raw_id, fields = entries[index]
                block = await self._whole(raw_id.decode(), fields, admitted[index], data[index])
                whole.add(index)
                if block is None:
                    del admitted[index]
                else:
                    admitted[index] = block
        if admitted:
            try:
                self.gateway.on_blocks([admitted[i] for i in sorted(admitted)], received_at)
            except Exception as exc:  # skip the batch; the stream goes on
                self._entry_failed(streams.BLOCKS, entries[-1][0].decode(), exc)
        self.last_id = entries[-1][0].decode()

    async def _judge(
        self, entry_id: str, fields: dict[bytes, bytes]
    ) -> tuple[SignalBlock, bytes] | None:
        """The entry's block header and its data's msgpack (not built) if well formed and
        admitted by the guard; otherwise rejected or refused (dead-lettered), or, if judging
        raises, counted and skipped: None."""
        try:
            parts = await self._parts(entry_id, fields)
            if parts is None or await self.admit_head(entry_id, fields, parts[0]) is None:
                return None
            return parts
        except Exception as exc:  # skip the entry; the stream goes on
            self._entry_failed(streams.BLOCKS, entry_id, exc)
            return None

    async def _whole(
        self, entry_id: str, fields: dict[bytes, bytes], head: SignalBlock, data: bytes
    ) -> SignalBlock | None:
        """An admitted header's whole block, its data decoded into the contract; None
        (refused: dead-lettered) when it breaks it."""
        outcome = self._checked(head, data)
        if isinstance(outcome, Rejection):
            await self._refuse(streams.BLOCKS, entry_id, fields.get(b"d", b""), head, outcome)
            return None
        return outcome

    async def _parts(
        self, entry_id: str, fields: dict[bytes, bytes]
    ) -> tuple[SignalBlock, bytes] | None:
        """The entry's block header and its data's msgpack (``decode_block_parts``); None
        when it is no block (rejected: dead-lettered). A header only the message's lax
        validation accepts is decoded whole (its data packed again)."""
        parts = decode_block_parts(fields)
        if parts is not None:
            return parts
        try:
            message = decode(fields)
            if not isinstance(message, SignalBlock):
                raise DecodeError(f"{message.TYPE} on the block stream")
        except DecodeError as exc:
            await self._reject(streams.BLOCKS, entry_id, fields.get(b"d", b""), str(exc))
            return None
        return message, msgspec.msgpack.encode(message.data)

    async def admit_head(
        self, entry_id: str, fields: dict[bytes, bytes], block: SignalBlock
    ) -> SignalBlock | None:
        """``block`` if the guard admits it, else None (dead-lettered with the reason)."""
        rejection = await self._admit(block)
        if rejection is not None:
            await self._refuse(streams.BLOCKS, entry_id, fields.get(b"d", b""), block, rejection)
            return None
        return block

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
        left_out = self.log_limit.allow("invalid_block")
        if left_out is not None:
            log.error(
                "invalid_block",
                origin=origin,
                origin_id=origin_id,
                reason=reason,
                left_out=left_out,
            )
        await asyncio.to_thread(self._dead_letter_once, origin, origin_id, payload, reason)

    async def _refuse(
        self, origin: str, origin_id: str, payload: bytes, block: SignalBlock, why: Rejection
    ) -> None:
        self.metrics.rejected.labels(block.engine, why.reason).inc()
        left_out = self.log_limit.allow(f"block_refused:{block.engine}:{why.reason}")
        if left_out is not None:
            log.error(
                "block_refused",
                origin=origin,
                origin_id=origin_id,
                reason=str(why),
                left_out=left_out,
            )
        await asyncio.to_thread(self._dead_letter_once, origin, origin_id, payload, str(why))

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
                await self.refresh_newest_input()
                if await self.epoch.check_async(self.client):
                    self._data_lost = True
            except redis.RedisError as exc:
                log.warning("health_read_failed", error=str(exc))
            except Exception as exc:  # an odd report must not end health polling
                log.error(
                    "health_update_failed", error=f"{type(exc).__name__}: {exc}", exc_info=exc
                )
            await asyncio.sleep(interval_s)
