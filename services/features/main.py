"""Features worker: bars in, feature snapshots and the market block out.

consume (aegis:bars) → compute (FeatureState) → publish (aegis:features, aegis:blocks).
Every bar is checked again against the shared market-sanity rules (shared.market.validation): ingest
is not the only writer of aegis:bars, so a bar that fails is dead-lettered here and moves no
watermark. Every valid bar yields its snapshot; the market block is conflated to the newest
snapshot of each batch (a block is latest-state, so a fast replay need not publish every
intermediate one), while every daily snapshot is stored (intraday snapshots point at them).
A jump in a series' bus sequence numbers is a hole: counted, logged and reported degraded.
The state is checkpointed in the same transaction as the outputs and acknowledgements, so a
restart (or a standby replica taking over) resumes exactly where the last commit left off.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from typing import Any

from services.features.market import market_data, new_sparkline
from services.features.sequencing import HeldBar, admit, series_of
from services.features.state import FeatureState
from shared.bus import replies, streams
from shared.bus.lifecycle import serve
from shared.bus.worker import StreamWorker
from shared.config import Settings
from shared.contract.blocks import build_block, pack_data
from shared.contract.codec import encode, pack, unpack
from shared.contract.schemas import Bar, FeatureSnapshot, Message
from shared.market.validation import Limits, Rejected, describe

HOLES_SHOWN = 10  # recent sequence holes listed in the health report


class FeaturesWorker(StreamWorker):
    service = "features"
    input_stream = streams.BARS
    ordered = True
    trims = (streams.FEATURES,)

    def __init__(self, settings: Settings, consumer: str | None = None) -> None:
        super().__init__(settings, consumer)
        self.sparkline = new_sparkline()
        self.state = FeatureState()
        self._needs_restore = True
        self.limits = Limits.from_settings(settings)
        self._revisions: dict[str, int] = {}
        self._seqs: dict[str, int] = {}
        self._daily_to_store: list[FeatureSnapshot] = []
        self._latest_snapshot: FeatureSnapshot | None = None
        self.holes: deque[dict[str, Any]] = deque(maxlen=HOLES_SHOWN)
        self.missing_entries = 0
        self._refused: dict[str, tuple[HeldBar, str]] = {}  # held bars refused this batch
        self.refused_out_of_sequence = 0

    def handle(self, message: Message, entry_id: str) -> Iterable[Message]:
        if not isinstance(message, Bar):
            raise Rejected(f"features consumes bars, got {message.TYPE}")
        problems = self.state.problems(message, time.time(), self.limits)
        if problems:
            raise Rejected(f"{describe(message)}: " + "; ".join(problems))
        missing = self.state.note_sequence(message, self._seqs.get(entry_id))
        if missing:
            self._note_hole(message, entry_id, missing)
        revision = self._revisions.get(entry_id, 0)
        admission = admit(message, revision, entry_id, self.state.held, self.state.clock_s)
        for held, why in admission.refused:
            self._refused[held.entry_id] = (held, why)
        if not admission.ready:
            self.log.warning("bar_held", reason=admission.held[series_of(message)].why)
        outputs: list[Message] = []
        for bar, bar_revision in admission.ready:
            for snapshot in self.state.apply(bar, bar_revision):
                self.clock.observe(snapshot.as_of)
                self.sparkline.append((snapshot.as_of, snapshot.spot))
                outputs.append(snapshot)
                self._latest_snapshot = snapshot
                if snapshot.kind == "daily":
                    self._daily_to_store.append(snapshot)
        self.state.held = admission.held  # last: a retried bar sees the held bars as before
        return outputs

    def _note_hole(self, bar: Bar, entry_id: str, missing: int) -> None:
        self.missing_entries += missing
        hole = {
            "series": f"{bar.symbol}:{bar.interval}",
            "missing": missing,
            "before_entry": entry_id,
            "before_open_time": bar.open_time,
            "seen_at": int(time.time() * 1000),
        }
        self.holes.append(hole)
        self.log.error("sequence_hole", **hole)

    def before_batch(self, entries: list[Any]) -> None:
        if self._needs_restore:
            self.state = self._restore()
            self._needs_restore = False
        # The revision number lives in the envelope (field r), not in the immutable bar.
        self._revisions = {
            raw_id.decode(): int(fields.get(b"r", b"0") or 0) for raw_id, fields in entries
        }
        self._seqs = {
            raw_id.decode(): int(fields[b"s"])
            for raw_id, fields in entries
            if b"s" in fields and fields[b"s"].isdigit()
        }
        self._daily_to_store = []
        self._latest_snapshot = None
        self._refused = {}

    def stage_extra(self, pipe: Any) -> None:
        for held, why in self._refused.values():
            self.refused_out_of_sequence += 1
            self._dead_letter(pipe, held.entry_id, encode(held.bar)["d"], why)
        if self._latest_snapshot is not None:
            snap = self._latest_snapshot
            data = market_data(snap, list(self.sparkline))
            block = build_block(
                "market",
                snap,
                data,
                pack_data(data),
                clock=self.clock,
                settings=self.settings,
            )
            self.bus.stage(pipe, block)
        if self._daily_to_store:  # every one: intraday snapshots of the batch point at them
            pipe.hset(
                streams.DAILY_FEATURES,
                mapping={s.session_date: pack(s.model_dump()) for s in self._daily_to_store},
            )
        checkpoint = {
            "state": self.state.to_checkpoint(),
            "sparkline": list(self.sparkline),
            "epoch": self.epoch.known,  # a batch in flight across a FLUSHALL writes it after
        }
        pipe.set(streams.checkpoint(self.service), pack(checkpoint))

    def on_reset(self) -> None:
        self._needs_restore = True

    def _restore(self) -> FeatureState:
        raw = replies.get_bytes(self.client, streams.checkpoint(self.service))
        self.sparkline = new_sparkline()
        if not raw:
            return FeatureState()
        data = unpack(raw)
        written_in = data.get("epoch")  # absent: written before checkpoints named it
        if written_in is not None and written_in != self.epoch.known:
            # a batch that was in flight when Redis lost its data wrote it into the new data:
            # the state it holds is of streams that are gone
            self.log.warning("checkpoint_of_lost_data_ignored", written_in=written_in)
            return FeatureState()
        self.sparkline.extend(tuple(p) for p in data["sparkline"])
        self.log.info("state_restored", daily_as_of=data["state"]["daily_as_of"])
        return FeatureState.from_checkpoint(data["state"])

    def health_details(self) -> dict[str, Any]:
        return {
            "daily_as_of": self.state.daily_as_of,
            "dropped": self.state.dropped,
            "missing_entries": self.missing_entries,
            "recent_holes": list(self.holes),
            "held_bars": [h.why for h in self.state.held.values()],
            "refused_out_of_sequence": self.refused_out_of_sequence,
        }

    def degraded_reasons(self) -> list[str]:
        window_ms = self.settings.health_reject_window_s * 1000
        recent = [h for h in self.holes if h["seen_at"] > time.time() * 1000 - window_ms]
        return [
            f"{h['missing']} entries of {h['series']} missing before {h['before_entry']}"
            for h in recent
        ] + [f"held until its series' next bar: {h.why}" for h in self.state.held.values()]


def main(settings: Settings | None = None) -> None:
    serve(FeaturesWorker, settings)
