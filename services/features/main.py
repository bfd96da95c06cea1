"""Features worker: bars in, feature snapshots and the market block out.

consume (aegis:bars) → compute (FeatureState) → publish (aegis:features, aegis:blocks).
Every bar yields its snapshot; the market block is conflated to the newest snapshot of each
batch (a block is latest-state, so a fast replay need not publish every intermediate one).
The state is checkpointed in the same transaction as the outputs and acknowledgements, so a
restart (or a standby replica taking over) resumes exactly where the last commit left off.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from services.features.market import market_data, new_sparkline
from services.features.state import FeatureState
from shared import streams
from shared.blocks import build_block
from shared.codec import pack, unpack
from shared.config import Settings
from shared.schemas import Bar, FeatureSnapshot, Message
from shared.worker import StreamWorker


class FeaturesWorker(StreamWorker):
    service = "features"
    input_stream = streams.BARS
    ordered = True

    def __init__(self, settings: Settings, consumer: str | None = None) -> None:
        super().__init__(settings, consumer)
        self.sparkline = new_sparkline()
        self.state = FeatureState()
        self._needs_restore = True
        self._revisions: dict[str, int] = {}
        self._daily_to_store: FeatureSnapshot | None = None
        self._latest_snapshot: FeatureSnapshot | None = None

    def handle(self, message: Message, entry_id: str) -> Iterable[Message]:
        if not isinstance(message, Bar):
            raise TypeError(f"features consumes bars, got {message.TYPE}")
        outputs: list[Message] = []
        revision = self._revisions.get(entry_id, 0)
        for snapshot in self.state.apply(message, revision):
            self.clock.observe(snapshot.as_of)
            self.sparkline.append((snapshot.as_of, snapshot.spot))
            outputs.append(snapshot)
            self._latest_snapshot = snapshot
            if snapshot.kind == "daily":
                self._daily_to_store = snapshot
        return outputs

    def before_batch(self, entries: list[Any]) -> None:
        if self._needs_restore:
            self.state = self._restore()
            self._needs_restore = False
        # The revision number lives in the envelope (field r), not in the immutable bar.
        self._revisions = {
            raw_id.decode(): int(fields.get(b"r", b"0") or 0) for raw_id, fields in entries
        }
        self._daily_to_store = None
        self._latest_snapshot = None

    def stage_extra(self, pipe: Any) -> None:
        if self._latest_snapshot is not None:
            snap = self._latest_snapshot
            block = build_block(
                "market",
                snap,
                market_data(snap, list(self.sparkline)),
                clock=self.clock,
                settings=self.settings,
            )
            self.bus.stage(pipe, block)
        if self._daily_to_store is not None:
            snap = self._daily_to_store
            pipe.hset(streams.DAILY_FEATURES, snap.session_date, pack(snap.model_dump()))
        checkpoint = {"state": self.state.to_checkpoint(), "sparkline": list(self.sparkline)}
        pipe.set(streams.checkpoint(self.service), pack(checkpoint))

    def on_reset(self) -> None:
        self._needs_restore = True

    def _restore(self) -> FeatureState:
        raw = self.client.get(streams.checkpoint(self.service))
        self.sparkline = new_sparkline()
        if not raw:
            return FeatureState()
        data = unpack(raw)
        self.sparkline.extend(tuple(p) for p in data["sparkline"])
        self.log.info("state_restored", daily_as_of=data["state"]["daily_as_of"])
        return FeatureState.from_checkpoint(data["state"])

    def health_details(self) -> dict[str, Any]:
        return {
            "daily_as_of": self.state.daily_as_of,
            "duplicates": self.state.duplicates,
            "ignored": self.state.ignored,
        }
