"""The consumer-group reliability loop, in one place.

A service subclasses ``StreamWorker`` and writes ``handle`` (one message in, messages out);
a ``batched`` service also writes ``handle_batch`` (the whole read batch in, outputs per
message), and a batch that raises is redone one ``handle`` at a time, so a single bad
message is dead-lettered with its reason and its neighbours are published. The loop here:
resume this consumer's own pending entries, claim entries that a dead replica left idle
(XAUTOCLAIM), read new ones (XREADGROUP >); publish every output and acknowledge
the inputs in one MULTI/EXEC, so an entry is acknowledged only together with its results.
An entry that cannot be decoded, that the handler rejects (``Rejected``), or whose handler
keeps failing, goes to the dead-letter stream with the reason. Redis going away means back
off, reconnect, recreate the group (``shared.bus.lifecycle``: reconnect, health report).

Recovery: entries idle for ``claim_idle_ms`` are claimed by another replica; while a batch is
being processed, a lease thread keeps its entries' idle time low (and the health report
alive), so only a dead or stuck worker loses them. Group maintenance removes consumers that
are gone (no health report, nothing pending) and trims the input stream of entries every
group acknowledged; a backlog above ``stream_maxlen`` degrades health instead.
"""

from __future__ import annotations

import gc
import os
import socket
import threading
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any, ClassVar

import orjson
import redis
from redis.typing import StreamIdT

from shared.bus import held, replies, streams
from shared.bus.lifecycle import (
    Backoff,
    HealthReporter,
    Reconnect,
    RejectWindow,
    Stopped,
    leave_idle_cpu,
)
from shared.bus.publish import Bus, connect, make_durable
from shared.bus.retention import OwnStreamTrim, group_info, trimmed_unread
from shared.bus.run_epoch import EpochWatch
from shared.config import Settings
from shared.contract.codec import DecodeError, decode
from shared.contract.schemas import Message
from shared.logs import get_logger
from shared.market.clock import Clock, make_clock
from shared.market.validation import Rejected

Entry = replies.Entry
Fields = replies.Fields
UNREAD_TRIMMED_REASON_S = 600.0  # how long health says entries were trimmed unread


class StreamWorker(ABC):
    """Base of every service that consumes a stream with a consumer group."""

    service: str
    input_stream: str
    # A stateful worker must see entries in stream order: it reads nothing new while another
    # consumer's entries are pending, and claims them first once they are abandoned.
    ordered: bool = False
    # A batched worker computes a read batch in one ``handle_batch`` call (vectorised models).
    batched: ClassVar[bool] = False
    # Group-read streams this service writes, and so trims (shared.bus.retention.OwnStreamTrim).
    trims: ClassVar[tuple[str, ...]] = ()

    def __init__(self, settings: Settings, consumer: str | None = None) -> None:
        self.settings = settings
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.group = self.service
        self.log = get_logger(self.service).bind(consumer=self.consumer)
        self.clock: Clock = make_clock(settings.clock)
        self.client = connect(settings)
        self.bus = Bus(self.client, settings)
        self.stop_event = threading.Event()
        self.stats: dict[str, Any] = {
            "processed": 0,
            "errors": 0,
            "dead_lettered": 0,
            "claimed": 0,
            "batch_fallbacks": 0,
            "rejected": 0,
            "consumers_removed": 0,
            "trimmed": 0,
            "reconnects": 0,
            "last_message_at": None,
            "last_error": None,
            "started_at": int(time.time() * 1000),
        }
        self._last_claim = 0.0
        self._last_maintenance = 0.0
        self.health = HealthReporter(self.client, settings, self.service, self.consumer)
        self.epoch = EpochWatch(self.service)
        self._rejects = RejectWindow(settings)  # processed vs dead-lettered + errors
        self._pending_first = True  # resume this consumer's own pending entries first
        self._unread_trimmed_at: float | None = None  # monotonic, when last seen
        self._lease = _Lease(self)
        self._trims = [OwnStreamTrim(stream, settings.stream_maxlen) for stream in self.trims]

    # What a service writes ----------------------------------------------------------------
    @abstractmethod
    def handle(self, message: Message, entry_id: str) -> Iterable[Message]:
        """Compute the outputs of one input message. Raise to signal a failure."""

    def handle_batch(self, batch: list[tuple[Message, str]]) -> list[list[Message]]:
        """The outputs of each (message, entry id), in order (only called when ``batched``).
        Raise and the worker redoes the batch one ``handle`` at a time."""
        return [list(self.handle(message, entry_id)) for message, entry_id in batch]

    def decode_entry(self, fields: Fields) -> Message:
        """One entry's fields as a message; a ``DecodeError`` dead-letters that entry alone.
        Bus messages by default (shared.contract.codec)."""
        return decode(fields)

    def before_batch(self, entries: list[Entry]) -> None:
        """Called with the raw entries before a batch is processed (e.g. to restore state)."""
        return None

    def stage_extra(self, pipe: Any) -> None:
        """Queue extra commands in the batch transaction (e.g. a state checkpoint)."""
        return None

    def after_batch(self) -> None:
        """Called once a batch's outputs are published (housekeeping off the live path)."""
        return None

    def on_reset(self) -> None:
        """Called after a failed batch: drop in-memory state not yet committed to Redis."""
        return None

    def health_details(self) -> dict[str, Any]:
        """Service-specific health (models loaded, degraded reasons)."""
        return {}

    def degraded_reasons(self) -> list[str]:
        return []

    def on_idle(self) -> None:
        """Called when a blocking read returned nothing (e.g. to check for new models)."""
        return None

    # The loop -----------------------------------------------------------------------------
    def run(self, max_idle_reads: int | None = None) -> None:
        """Process until stop() (or ``max_idle_reads`` empty reads in a row, for tests)."""
        self.log.info("worker_started", stream=self.input_stream, group=self.group)
        # Start-up objects (modules, models) live as long as the process: freezing them keeps
        # the collector from walking them all again whenever a batch's objects survive a
        # young collection (measured: a third of an engine's CPU time on large batches).
        gc.freeze()
        reconnect = Reconnect(
            self.log,
            Backoff.from_settings(self.settings),
            stop=self.stop_event,
            on_retry=self._redis_lost,
        )
        self._pending_first = True
        idle_reads = 0
        while not self.stop_event.is_set():
            try:
                got = reconnect.call(self._step, what=self.input_stream)
            except Stopped:
                break
            except redis.ResponseError as exc:
                # the group is gone, or the stream was deleted under a blocked read
                if str(exc).startswith(("NOGROUP", "UNBLOCKED")):
                    self.log.warning("group_missing_recreating", error=str(exc))
                    self.on_reset()
                    self._pending_first = True
                    continue
                raise
            if got is None:
                continue
            idle_reads = 0 if got else idle_reads + 1
            if not got:
                self.on_idle()
            if max_idle_reads is not None and idle_reads >= max_idle_reads:
                break
        self._lease.close()
        try:
            self._write_health(force=True)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            self.log.warning("final_health_not_written", error=str(exc))
        self.log.info(
            "worker_stopped", **{k: v for k, v in self.stats.items() if k != "last_error"}
        )

    def _step(self) -> bool | None:
        """One turn of the loop: whether new entries were read (None: an ordered worker
        waits for another consumer's pending entries)."""
        if self._pending_first:  # at start, after Redis came back or lost the group
            if self.epoch.check(self.client):  # it lost its data: nothing held is valid
                self.on_reset()
            self._ensure_group()
            self._drain_own_pending()
            self._pending_first = False
        self._claim_abandoned()
        self._maintain_group()
        if self.ordered and self._others_pending():
            self._write_health()
            self.stop_event.wait(self.settings.block_ms / 1000)
            return None
        got = self._read_new()
        self._write_health()
        return got

    def _redis_lost(self, exc: BaseException) -> None:
        """Redis went away mid-step: count it, drop what was not committed, resume."""
        self.stats["reconnects"] += 1
        self.on_reset()
        self._pending_first = True

    def stop(self) -> None:
        self.stop_event.set()

    def _ensure_group(self) -> None:
        try:
            self.client.xgroup_create(self.input_stream, self.group, id="0", mkstream=True)
            self.log.info("group_created", stream=self.input_stream, group=self.group)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _drain_own_pending(self) -> None:
        """Entries delivered to this consumer name before a restart, not yet acknowledged."""
        last_id: str | bytes = "0"
        while True:
            entries = replies.xreadgroup(
                self.client,
                self.group,
                self.consumer,
                self.input_stream,
                last_id,
                count=self.settings.read_count,
            )
            if not entries:
                return
            with self._lease.holding(entries):
                self._process(entries, redelivered=True)
            last_id = entries[-1][0]

    def _others_pending(self) -> bool:
        summary = self.client.xpending(self.input_stream, self.group)
        return any(
            (c["name"].decode() if isinstance(c["name"], bytes) else c["name"]) != self.consumer
            for c in summary.get("consumers") or []
        )

    def _claim_abandoned(self) -> None:
        now = time.monotonic()
        if now - self._last_claim < min(self.settings.claim_idle_ms / 2000, 1.0):
            return
        self._last_claim = now
        start = "0-0"
        while True:
            next_start, entries, *_ = self.client.xautoclaim(
                self.input_stream,
                self.group,
                self.consumer,
                min_idle_time=self.settings.claim_idle_ms,
                start_id=start,
                count=self.settings.read_count,
            )
            entries = [e for e in entries if e[1] is not None]  # deleted by trimming
            if entries:
                self.stats["claimed"] += len(entries)
                self.log.info("claimed_abandoned", count=len(entries))
                with self._lease.holding(entries):
                    self._process(entries, redelivered=True)
            start = next_start.decode() if isinstance(next_start, bytes) else next_start
            if start == "0-0":
                return

    def _read_new(self) -> bool:
        entries = replies.xreadgroup(
            self.client,
            self.group,
            self.consumer,
            self.input_stream,
            ">",
            count=self.settings.read_count,
            block=self.settings.block_ms,
        )
        if entries:
            with self._lease.holding(entries):
                self._process(entries, redelivered=False)
        return bool(entries)

    def _maintain_group(self) -> None:
        """Once a second: forget consumers that are gone; trim, in the streams this service
        writes, what every group acknowledged."""
        now = time.monotonic()
        if now - self._last_maintenance < 1.0:
            return
        self._last_maintenance = now
        for consumer in self.client.xinfo_consumers(self.input_stream, self.group):
            name = consumer["name"]
            name = name.decode() if isinstance(name, bytes) else name
            if (
                name != self.consumer
                and not consumer["pending"]
                and consumer["idle"] > self.settings.claim_idle_ms
                and not self.client.exists(streams.health(self.service, name))
            ):
                self.client.xgroup_delconsumer(self.input_stream, self.group, name)
                self.stats["consumers_removed"] += 1
                self.log.info("dead_consumer_removed", removed=name)
        for own in self._trims:
            self.stats["trimmed"] += own.trim(self.client).trimmed

    def _delivery_counts(self, entries: list[Entry]) -> dict[bytes, int]:
        rows = replies.xpending_range(
            self.client,
            self.input_stream,
            self.group,
            min=entries[0][0],
            max=entries[-1][0],
            count=len(entries) * 2 + 10,
            consumer=self.consumer,
        )
        return {r["message_id"]: r["times_delivered"] for r in rows}

    def _process(self, entries: list[Entry], redelivered: bool) -> None:
        self.before_batch(entries)
        counts = self._delivery_counts(entries) if redelivered else {}
        pipe = self.client.pipeline(transaction=True)
        ids = []
        todo: list[tuple[Message, str, bytes]] = []
        for raw_id, fields in entries:
            entry_id = raw_id.decode()
            ids.append(raw_id)
            payload = fields.get(b"d", b"")
            if counts.get(raw_id, 0) > self.settings.max_deliveries:
                self._dead_letter(
                    pipe, entry_id, payload, f"delivered {counts[raw_id]} times without success"
                )
                continue
            try:
                todo.append((self.decode_entry(fields), entry_id, payload))
            except DecodeError as exc:
                self._dead_letter(pipe, entry_id, payload, str(exc))
        for outputs in self._handle_all(todo, pipe):
            if outputs is None:
                continue
            for out in outputs:
                self.bus.stage(pipe, out)
            self.stats["processed"] += 1
        self.stage_extra(pipe)
        pipe.xack(self.input_stream, self.group, *ids)
        try:
            pipe.execute()
            # outputs and acknowledgement are one transaction: on a replica together or not at
            # all; until they are, in-memory state is dropped as if the batch had failed
            make_durable(self.client, self.settings)
        except Exception:
            self.on_reset()
            raise
        self.stats["last_message_at"] = int(time.time() * 1000)
        self.after_batch()

    def _handle_all(
        self, todo: list[tuple[Message, str, bytes]], pipe: Any
    ) -> list[list[Message] | None]:
        """Outputs per decoded message (None: dead-lettered): the whole batch in one
        ``handle_batch`` call when the worker is batched, else (or when that raises) one
        ``handle`` per message with retries."""
        if self.batched and len(todo) > 1:
            try:
                results = self.handle_batch([(message, entry_id) for message, entry_id, _ in todo])
                if len(results) != len(todo):
                    raise ValueError(f"{len(results)} results for {len(todo)} messages")
                return list(results)
            except (redis.ConnectionError, redis.TimeoutError):
                raise  # Redis went away: reconnect and redeliver, this is no handler failure
            except Exception as exc:  # redone one message at a time below
                self.stats["batch_fallbacks"] += 1
                self.log.warning(
                    "batch_failed_one_by_one",
                    size=len(todo),
                    error=f"{type(exc).__name__}: {exc}",
                )
        return [
            self._handle_with_retries(message, entry_id, pipe, payload)
            for message, entry_id, payload in todo
        ]

    def _handle_with_retries(
        self, message: Message, entry_id: str, pipe: Any, payload: bytes
    ) -> list[Message] | None:
        for attempt in range(1, self.settings.handler_attempts + 1):
            try:
                return list(self.handle(message, entry_id))
            except (redis.ConnectionError, redis.TimeoutError):
                raise  # Redis went away: reconnect and redeliver, this is no handler failure
            except Rejected as exc:  # invalid input: no retry, its reason goes with it
                self.stats["rejected"] += 1
                self._dead_letter(pipe, entry_id, payload, exc.reason)
                return None
            except Exception as exc:  # a handler bug must not kill the worker
                self.stats["errors"] += 1
                self.stats["last_error"] = f"{type(exc).__name__}: {exc}"
                self.log.error(
                    "handler_failed",
                    entry_id=entry_id,
                    attempt=attempt,
                    error=self.stats["last_error"],
                )
                if attempt == self.settings.handler_attempts:
                    reason = (
                        f"handler failed {attempt} times: {self.stats['last_error']}\n"
                        + "".join(traceback.format_exception_only(exc)).strip()
                    )
                    self._dead_letter(pipe, entry_id, payload, reason)
        return None

    def _dead_letter(self, pipe: Any, entry_id: str, payload: bytes, reason: str) -> None:
        self.stats["dead_lettered"] += 1
        self.log.warning("dead_lettered", entry_id=entry_id, reason=reason)
        self.bus.dead_letter(
            origin_stream=self.input_stream,
            origin_id=entry_id,
            service=self.service,
            reason=reason,
            payload=payload,
            pipe=pipe,
        )

    # Health -------------------------------------------------------------------------------
    def _write_health(self, force: bool = False) -> None:
        if not self.health.due(force):
            return
        if self.epoch.check(self.client):  # Redis lost its data: nothing held is valid
            self.on_reset()
            self._pending_first = True  # a flush also ends the group: recreate it
        reasons = (
            self.degraded_reasons()
            + self._bus_degraded_reasons()
            + held.degraded_reasons()
            + self.epoch.degraded_reasons()
        )
        lag = pending = None
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.xinfo_groups(self.input_stream)
            pipe.xlen(self.input_stream)
            groups, length = pipe.execute()
            info = group_info(groups, self.group) or {}
            lag, pending = info.get("lag"), info.get("pending")
        except redis.ResponseError:
            length = None
        reasons += self._unread_trimmed(lag, length)
        self._keep_up(lag)
        self.health.write(
            reasons,
            {
                "stream": self.input_stream,
                "lag": lag,
                "pending": pending,
                **self.stats,
                **self.health_details(),
            },
        )

    def _unread_trimmed(self, lag: object, length: object) -> list[str]:
        """A stream capped where it is written (``aegis:blocks``) drops its oldest entries
        whether this group read them or not: more entries unread (the group's lag, Redis 7)
        than the stream holds means some were trimmed unread. Logged and reported degraded
        for ``UNREAD_TRIMMED_REASON_S`` after it was last seen."""
        lost = trimmed_unread(lag, length)
        if lost:
            self.stats["trimmed_unread"] = max(self.stats.get("trimmed_unread", 0), lost)
            self._unread_trimmed_at = time.monotonic()
            self.log.warning("entries_trimmed_unread", stream=self.input_stream, at_least=lost)
        at = self._unread_trimmed_at
        if at is None or time.monotonic() - at > UNREAD_TRIMMED_REASON_S:
            return []
        return [
            f"at least {self.stats['trimmed_unread']} entries of {self.input_stream} were "
            "trimmed (the stream's length cap) before this service read them"
        ]

    def _keep_up(self, lag: object) -> None:
        """A reader of the capped block stream on idle CPU (the alerts and history in a
        replay) a quarter of the cap behind leaves idle CPU for good: starved by a flood, it
        would lose the oldest blocks it has not read to the cap."""
        if self.input_stream != streams.BLOCKS or not isinstance(lag, int):
            return
        if lag >= self.settings.blocks_maxlen // 4 and leave_idle_cpu():
            self.stats["left_idle_cpu"] = True
            self.log.warning("idle_cpu_left", lag=lag, blocks_maxlen=self.settings.blocks_maxlen)

    def _bus_degraded_reasons(self) -> list[str]:
        """Too many rejections or errors lately; an output backlog no trim may remove."""
        reasons = []
        bad_now = self.stats["dead_lettered"] + self.stats["errors"]
        too_many = self._rejects.add(self.stats["processed"], bad_now)
        if too_many is not None:
            processed, bad = too_many
            reasons.append(
                f"{bad} rejections or errors against {processed} processed in the last "
                f"{len(self._rejects)} reports (threshold {self._rejects.ratio:.0%})"
            )
        reasons += [r for own in self._trims if (r := own.degraded_reason()) is not None]
        return reasons


class _Lease:
    """Keeps the entries of the batch in hand owned by their worker while it works on them.

    A helper thread re-claims them (XCLAIM JUSTID, which resets their idle time without
    counting a delivery) every third of ``claim_idle_ms`` and refreshes the health report's
    TTL, so another replica claims them only when this worker is dead or stuck."""

    def __init__(self, worker: StreamWorker) -> None:
        self.worker = worker
        self.interval_s = worker.settings.claim_idle_ms / 3000
        self._ids: list[bytes] = []
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self.renewals = 0

    def holding(self, entries: list[Entry]) -> _Lease:
        with self._lock:
            self._ids = [raw_id for raw_id, _ in entries]
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True, name="lease")
            self._thread.start()
        return self

    def __enter__(self) -> _Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._ids = []

    def close(self) -> None:
        """End the helper thread (the worker's loop has returned)."""
        if self._thread is not None:
            self._done.set()
            self._thread.join()
            self._thread = None
            self._done.clear()

    def _run(self) -> None:
        w = self.worker
        while not self._done.wait(self.interval_s):
            with self._lock:
                ids = list(self._ids)
            if not ids:
                continue
            try:
                mine: list[StreamIdT] = [
                    r["message_id"]
                    for r in replies.xpending_range(
                        w.client,
                        w.input_stream,
                        w.group,
                        min=ids[0],  # a batch is in stream order
                        max=ids[-1],
                        count=len(ids),
                        consumer=w.consumer,
                    )
                ]
                if mine:
                    w.client.xclaim(
                        w.input_stream, w.group, w.consumer, 0, message_ids=mine, justid=True
                    )
                    self.renewals += 1
                w.health.refresh()
            except redis.RedisError as exc:
                w.log.warning("lease_renewal_failed", error=str(exc))


def read_health(client: redis.Redis) -> list[dict[str, Any]]:
    """Every live health report (workers whose report has not expired)."""
    keys = sorted(client.scan_iter(match=streams.HEALTH_PREFIX + "*", count=200))
    values = client.mget(keys) if keys else []
    reports = []
    for key, value in zip(keys, values, strict=True):
        if not value:
            continue  # expired between SCAN and MGET
        try:
            reports.append(orjson.loads(value))
        except orjson.JSONDecodeError:
            get_logger("health").warning(
                "health_report_unreadable", key=key.decode(errors="replace")
            )
    return reports
