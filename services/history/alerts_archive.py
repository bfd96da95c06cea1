"""The alerts, kept beside the blocks: consume aegis:alerts (the JSON records services.alerts
writes; consumer group ``history-alerts``) -> write each to the history database's ``alert``
table -> acknowledge. Like the blocks: a redelivered record is written again with the same
values (an upsert on its deterministic id), the database away is retried, never dead-lettered;
a record that is not an alert is dead-lettered alone."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError

from shared.bus import streams
from shared.bus.worker import Fields, StreamWorker
from shared.config import Settings
from shared.contract.codec import DecodeError
from shared.contract.schemas import AlertRecord, Message
from shared.history.store import HistoryStore, StoreUnavailable


def alert_record(fields: Fields) -> AlertRecord:
    """An aegis:alerts entry as an ``AlertRecord``, or ``DecodeError`` saying why not."""
    try:
        record = orjson.loads(fields.get(b"d", b""))
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"alert record is not JSON: {exc}") from exc
    if not isinstance(record, dict):
        raise DecodeError("alert record is not a JSON object")
    try:
        return AlertRecord(
            id=record.get("id"),
            as_of=record.get("as_of"),
            rule=record.get("rule"),
            severity=record.get("severity"),
            record=record,
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise DecodeError(f"invalid alert record: {problems}") from exc


class AlertsArchiveWorker(StreamWorker):
    service = "history-alerts"
    input_stream = streams.ALERTS
    batched = True

    def __init__(self, settings: Settings, store: HistoryStore, consumer: str | None = None):
        super().__init__(settings, consumer)
        self.store = store
        self.stats.update(alerts_written=0)

    def decode_entry(self, fields: Fields) -> Message:
        return alert_record(fields)

    def handle(self, message: Message, entry_id: str) -> Iterable[Message]:
        return self.handle_batch([(message, entry_id)])[0]

    def handle_batch(self, batch: list[tuple[Message, str]]) -> list[list[Message]]:
        records = [m for m, _ in batch if isinstance(m, AlertRecord)]
        try:
            self.stats["alerts_written"] += self.store.write_alerts(records)
        except OperationalError as exc:
            raise StoreUnavailable(f"history database: {exc.orig}") from exc
        return [[] for _ in batch]

    def health_details(self) -> dict[str, Any]:
        return {"database": self.store.engine.dialect.name}
