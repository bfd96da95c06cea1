"""The gateway's state machine: blocks, staleness ticks and health reports in; document
changes out to the websocket hub, the metrics and the output file.

The document's ``sequence`` counts changes (+1 each) within an ``epoch``; a client that sees
another epoch knows the counting restarted and takes a snapshot instead of looking for a gap.
Wall clock: the epoch is the gateway's start time (ms), so each start gets a larger one. Event
clock: it is the newest as_of (ms) among the blocks loaded at start-up, 0 for a replay from
an empty stream - a function of the data only, so replays, with any number of engine
replicas, give the same epoch; a restart after new blocks gets a larger one."""

from __future__ import annotations

import time
from typing import Any

import orjson

from services.gateway.assembler import FEED_SERVICE, DocumentState, FeedWatch, health_section
from services.gateway.hub import Hub, HubLimits
from services.gateway.metrics import GatewayMetrics
from services.gateway.output import OutputWriter
from shared.contract.document import ENGINES
from shared.contract.schemas import SignalBlock
from shared.logs import get_logger
from shared.market.clock import Clock, clock_section

log = get_logger("gateway")
FILE_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE


class Gateway:
    def __init__(
        self,
        clock: Clock,
        event_clock: bool,
        metrics: GatewayMetrics,
        writer: OutputWriter,
        limits: HubLimits,
    ) -> None:
        self.clock = clock
        self.event_clock = event_clock
        self.hub = Hub(self.snapshot_message, metrics, limits)
        self.metrics = metrics
        self.writer = writer
        self.state = DocumentState(epoch=0 if event_clock else int(time.time() * 1000))
        self.feeds = FeedWatch()
        self.missing_feeds: list[str] = []
        self._epoch_open = not event_clock
        metrics.epoch.set(self.state.epoch)
        self._doc_cache: tuple[int, dict[str, Any], bytes] | None = None
        self._snapshot_cache: tuple[int, str] | None = None
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    def restart_document(self) -> None:
        """Redis lost its data, and the document was made from it: start an empty document in
        a new epoch (clients take its snapshot), which the re-published blocks fill again
        (as the old one, they would all be older than what it holds)."""
        self.state = DocumentState(epoch=0 if self.event_clock else int(time.time() * 1000))
        self._epoch_open = not self.event_clock
        self.metrics.epoch.set(self.state.epoch)
        self._doc_cache = None
        self._snapshot_cache = None

    # Inputs ------------------------------------------------------------------------------
    def open_epoch(self, newest_as_of_s: int) -> None:
        """Event clock: fix the epoch from the blocks loaded at start-up (once)."""
        if self._epoch_open:
            return
        self._epoch_open = True
        self.state.epoch = newest_as_of_s * 1000
        self.metrics.epoch.set(self.state.epoch)

    def on_block(self, block: SignalBlock, received_at: float) -> str:
        """Apply one block (see ``on_blocks``)."""
        return self.on_blocks([block], received_at)[0]

    def on_blocks(self, blocks: list[SignalBlock], received_at: float) -> list[str]:
        """Apply a read batch of valid blocks as one change (one update, one document
        serialisation, however many blocks); returns each block's verdict: new | update |
        duplicate | older. The document and the counters end as if applied one by one."""
        for block in blocks:
            self.clock.observe(block.as_of)
        first_sequence = self.state.sequence + 1
        verdicts, change = self.state.offer_batch(blocks, self.clock.now_ms())
        taken: dict[str, SignalBlock] = {}
        for block, verdict in zip(blocks, verdicts, strict=True):
            if verdict == "duplicate":
                self._child(self.metrics.duplicates, block.engine).inc()
            elif verdict == "older":
                self._child(self.metrics.older, block.engine).inc()
            else:
                taken[block.engine] = block
                self._child(self.metrics.accepted, block.engine, block.kind).inc()
                if not self.event_clock:
                    self.metrics.block_delay.observe(max(received_at - block.computed_at / 1000, 0))
        for engine, block in taken.items():
            self._child(self.metrics.last_as_of, engine).set(block.as_of)
            self._child(self.metrics.last_computed, engine).set(block.computed_at / 1000)
            self._child(self.metrics.last_received, engine).set(received_at)
        if change is not None:
            self._emit(change, received_at, first_sequence)
        return list(verdicts)

    def tick(self) -> None:
        """Flip stale flags as (wall) time passes."""
        change = self.state.restale(self.clock.now_ms())
        if change is not None:
            self._emit(change, time.time(), self.state.sequence)

    def on_health(self, reports: list[dict[str, Any]]) -> None:
        self.missing_feeds = self.feeds.missing(reports)
        self._feed_metrics(reports)
        health = health_section(
            reports, volatile=not self.event_clock, missing_feeds=self.missing_feeds
        )
        change = self.state.set_health(health, self.clock.now_ms(), publish=not self.event_clock)
        if change is not None:
            self._emit(change, time.time(), self.state.sequence)

    def _child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, looked up once (several per block otherwise)."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    # Outputs -----------------------------------------------------------------------------
    def document(self) -> tuple[dict[str, Any], bytes]:
        """The current document and its file bytes (cached per sequence)."""
        seq = self.state.sequence
        if self._doc_cache is None or self._doc_cache[0] != seq:
            doc = {**self.state.document(), "clock": clock_section(self.clock)}
            self._doc_cache = (seq, doc, orjson.dumps(doc, option=FILE_OPTIONS))
        return self._doc_cache[1], self._doc_cache[2]

    def _document_bytes(self) -> bytes:
        return self.document()[1]

    def snapshot_message(self) -> tuple[int, str]:
        seq = self.state.sequence
        if self._snapshot_cache is None or self._snapshot_cache[0] != seq:
            message = {
                "type": "snapshot",
                "epoch": self.state.epoch,
                "sequence": seq,
                "document": self.document()[0],
            }
            self._snapshot_cache = (seq, orjson.dumps(message).decode())
        # the clock as of sending (the cached document's is as of its change): ages in the
        # page are measured from it
        clock = orjson.dumps(clock_section(self.clock)).decode()
        return seq, '{"clock":' + clock + "," + self._snapshot_cache[1][1:]

    def has_blocks(self) -> bool:
        return bool(self.state.blocks)

    def has_every_section(self) -> bool:
        return all(self.state.sections.get(engine) for engine in ENGINES)

    def readiness_problems(self) -> list[str]:
        """Why the document should not be served as current (empty when it can)."""
        problems = []
        if not self.state.blocks:
            problems.append("no blocks yet")
        stale = sorted(e for e, s in self.state.sections.items() if s.get("stale"))
        if stale:
            problems.append(f"stale blocks: {', '.join(stale)}")
        for source in self.missing_feeds:
            problems.append(f"feed down: source {source} stopped reporting")
        if self.writer.last_error is not None:
            problems.append(f"output file not written: {self.writer.last_error}")
        return problems

    def _feed_metrics(self, reports: list[dict[str, Any]]) -> None:
        for report in reports:
            if not isinstance(report, dict) or report.get("service") != FEED_SERVICE:
                continue
            source = str(report.get("consumer"))
            ok = report.get("status") == "ok" and not report.get("degraded_reasons")
            self.metrics.feed_up.labels(source).set(1 if ok else 0)
            if isinstance(report.get("last_message_at"), int):
                self.metrics.feed_last_message.labels(source).set(report["last_message_at"] / 1000)
            if isinstance(report.get("lag"), int):
                self.metrics.feed_lag.labels(source).set(report["lag"])
        for source in self.missing_feeds:
            self.metrics.feed_up.labels(source).set(0)

    def _emit(self, change: dict[str, Any], received_at: float, first_sequence: int) -> None:
        """One update for the changes ``first_sequence``..``sequence`` (one live, a batch's in
        a burst): metrics, the websocket update (serialised only if a client listens) and the
        output file."""
        seq = self.state.sequence
        self.metrics.changes.inc(seq - first_sequence + 1)
        self.metrics.sequence.set(seq)
        for engine, section in change["blocks"].items():
            self._child(self.metrics.block_stale, engine).set(1 if section.get("stale") else 0)
        if self.hub.clients:
            update = {
                "type": "update",
                "epoch": self.state.epoch,
                "first_sequence": first_sequence,
                "sequence": seq,
                **change,
                "clock": clock_section(self.clock),
            }
            self.hub.publish(seq, orjson.dumps(update).decode(), received_at)
        self.writer.submit(self._document_bytes)
