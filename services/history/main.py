"""History: consume signal blocks (aegis:blocks, consumer group ``history``) -> write each
block whole (its payload as read) and its typed series (shared.history.series) to the history
database -> thin what left the detail window (shared.history.retention) -> acknowledge. A
crash between the database commit and the acknowledgement redelivers the batch, whose rows
are written again with the same values (upserts): nothing is lost or doubled, and replicas
share the group like every worker. The database away is treated like Redis away: nothing
acknowledged, back off, retry (never a dead letter)."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from sqlalchemy.exc import OperationalError

from services.history.alerts_archive import AlertsArchiveWorker
from shared.bus import streams
from shared.bus.lifecycle import idle_cpu, prepare, serve
from shared.bus.worker import Entry, StreamWorker
from shared.config import Settings
from shared.contract.schemas import Message, SignalBlock
from shared.history.retention import Retention
from shared.history.store import HistoryStore, StoreUnavailable, migrate, open_engine
from shared.logs import get_logger


class HistoryWorker(StreamWorker):
    service = "history"
    input_stream = streams.BLOCKS
    batched = True

    def __init__(self, settings: Settings, consumer: str | None = None) -> None:
        super().__init__(settings, consumer)
        self.store = HistoryStore(open_engine(settings.history_url))
        migrate(self.store.engine)
        self.stats.update(blocks_written=0, rows_thinned=0)
        self.payloads: dict[str, bytes] = {}
        self.retention = Retention(
            settings.history_detail_days * 86_400, settings.history_downsample_s
        )

    def handle(self, message: Message, entry_id: str) -> Iterable[Message]:
        return self.handle_batch([(message, entry_id)])[0]

    def before_batch(self, entries: list[Entry]) -> None:
        # the payloads as read: stored as they are, never encoded again
        self.payloads = {raw_id.decode(): fields.get(b"d", b"") for raw_id, fields in entries}

    def handle_batch(self, batch: list[tuple[Message, str]]) -> list[list[Message]]:
        blocks: list[SignalBlock] = []
        bodies: list[bytes] = []
        for message, entry_id in batch:
            if isinstance(message, SignalBlock):
                blocks.append(message)
                bodies.append(self.payloads[entry_id])
        try:
            self.stats["blocks_written"] += self.store.write(blocks, bodies)
            self.stats["rows_thinned"] += self.retention.advance(self.store, blocks)
        except OperationalError as exc:
            raise StoreUnavailable(f"history database: {exc.orig}") from exc
        return [[] for _ in batch]

    def health_details(self) -> dict[str, Any]:
        return {"database": self.store.engine.dialect.name}


class HistoryService:
    """The history process: the blocks' worker, and the alerts' worker in a thread beside it
    (one database). If either ends on an error, both stop and the process exits with it."""

    service = "history"  # its Redis user

    def __init__(self, settings: Settings, consumer: str | None = None) -> None:
        self.blocks = HistoryWorker(settings, consumer)
        self.alerts = AlertsArchiveWorker(settings, self.blocks.store, consumer)
        self.failure: BaseException | None = None

    def run(self) -> None:
        thread = threading.Thread(target=self._run_alerts, name="alerts-archive", daemon=True)
        thread.start()
        try:
            self.blocks.run()
        finally:
            self.alerts.stop()
            thread.join(timeout=30)
        if self.failure is not None:
            raise self.failure

    def _run_alerts(self) -> None:
        try:
            self.alerts.run()
        except BaseException as exc:
            self.failure = exc
            self.blocks.stop()

    def stop(self) -> None:
        self.blocks.stop()
        self.alerts.stop()


def main(settings: Settings | None = None) -> None:
    settings = prepare(settings)
    # off the document's path: in a replay it yields the CPU to the engines and catches up
    idle = settings.history_idle_cpu_in_replay and not settings.live and idle_cpu()
    get_logger("history").info("history_priority", idle_cpu_only=idle)
    serve(HistoryService, settings)
