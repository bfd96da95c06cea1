"""The gateway's state machine: blocks, staleness ticks and health reports in; document
changes out to the websocket hub, the metrics and the output file."""

from __future__ import annotations

import time
from typing import Any

import orjson

from services.gateway.assembler import DocumentState, FeedWatch, health_section
from services.gateway.hub import Hub
from services.gateway.metrics import GatewayMetrics
from services.gateway.output import OutputWriter
from shared.clock import Clock, clock_section
from shared.logs import get_logger
from shared.schemas import SignalBlock

log = get_logger("gateway")
FILE_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE


class Gateway:
    def __init__(
        self,
        clock: Clock,
        event_clock: bool,
        metrics: GatewayMetrics,
        writer: OutputWriter,
        queue_size: int,
        heartbeat_s: float,
    ) -> None:
        self.clock = clock
        self.event_clock = event_clock
        self.hub = Hub(self.snapshot_message, metrics, queue_size, heartbeat_s)
        self.metrics = metrics
        self.writer = writer
        self.state = DocumentState()
        self.feeds = FeedWatch()
        self._doc_cache: tuple[int, dict[str, Any], bytes] | None = None
        self._snapshot_cache: tuple[int, str] | None = None

    # Inputs ------------------------------------------------------------------------------
    def on_block(self, block: SignalBlock, received_at: float) -> str:
        """Apply one valid block; returns new | update | duplicate | older.

        Raises ValueError, before anything changes, for data the JSON document cannot hold
        (msgpack allows bytes, integer keys, 128-bit integers): committed, such a section
        would make every later document, update and file write fail."""
        try:
            orjson.dumps(block.data)
        except orjson.JSONEncodeError as exc:
            raise ValueError(f"{block.engine} block data is not JSON-serialisable: {exc}") from exc
        self.clock.observe(block.as_of)
        verdict, change = self.state.offer(block, self.clock.now_ms())
        if verdict == "duplicate":
            self.metrics.duplicates.labels(block.engine).inc()
        elif verdict == "older":
            self.metrics.older.labels(block.engine).inc()
        else:
            self.metrics.accepted.labels(block.engine, block.kind).inc()
            self.metrics.last_as_of.labels(block.engine).set(block.as_of)
            self.metrics.last_computed.labels(block.engine).set(block.computed_at / 1000)
            self.metrics.last_received.labels(block.engine).set(received_at)
            if not self.event_clock:
                self.metrics.block_delay.observe(max(received_at - block.computed_at / 1000, 0))
        if change is not None:
            self._emit(change, received_at)
        return verdict

    def tick(self) -> None:
        """Flip stale flags as (wall) time passes."""
        change = self.state.restale(self.clock.now_ms())
        if change is not None:
            self._emit(change, time.time())

    def on_health(self, reports: list[dict[str, Any]]) -> None:
        health = health_section(
            reports, volatile=not self.event_clock, missing_feeds=self.feeds.missing(reports)
        )
        change = self.state.set_health(health, self.clock.now_ms(), publish=not self.event_clock)
        if change is not None:
            self._emit(change, time.time())

    # Outputs -----------------------------------------------------------------------------
    def document(self) -> tuple[dict[str, Any], bytes]:
        """The current document and its file bytes (cached per sequence)."""
        seq = self.state.sequence
        if self._doc_cache is None or self._doc_cache[0] != seq:
            doc = {**self.state.document(), "clock": clock_section(self.clock)}
            self._doc_cache = (seq, doc, orjson.dumps(doc, option=FILE_OPTIONS))
        return self._doc_cache[1], self._doc_cache[2]

    def snapshot_message(self) -> tuple[int, str]:
        seq = self.state.sequence
        if self._snapshot_cache is None or self._snapshot_cache[0] != seq:
            message = {"type": "snapshot", "sequence": seq, "document": self.document()[0]}
            self._snapshot_cache = (seq, orjson.dumps(message).decode())
        # the clock as of sending (the cached document's is as of its change): ages in the
        # page are measured from it
        clock = orjson.dumps(clock_section(self.clock)).decode()
        return seq, '{"clock":' + clock + "," + self._snapshot_cache[1][1:]

    def has_blocks(self) -> bool:
        return bool(self.state.blocks)

    def _emit(self, change: dict[str, Any], received_at: float) -> None:
        seq = self.state.sequence
        self.metrics.changes.inc()
        self.metrics.sequence.set(seq)
        clock = clock_section(self.clock)
        text = orjson.dumps({"type": "update", "sequence": seq, **change, "clock": clock}).decode()
        self.hub.publish(seq, text, received_at)
        self.writer.submit(self.document()[1])
