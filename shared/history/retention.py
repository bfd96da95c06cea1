"""How long the history keeps its detail: every block and point of the last ``detail_s`` of
stream time; before that, the last block per engine and the last point per series of each
``step_s``. Thinning follows the stream (a replay thins as it goes, live thins as the days
pass), a step once, whole."""

from __future__ import annotations

from dataclasses import dataclass

from shared.history.store import HistoryStore


@dataclass
class Retention:
    detail_s: int
    step_s: int
    thinned_to: int = 0  # as_of below which every step is thinned (this process)

    def advance(self, store: HistoryStore, stream_time: int) -> int:
        """Thin the steps that left the detail window since the last call; rows deleted."""
        cutoff = stream_time - self.detail_s
        cutoff -= cutoff % self.step_s
        if cutoff - self.thinned_to < self.step_s:
            return 0
        deleted = store.downsample(self.thinned_to, cutoff, self.step_s)
        self.thinned_to = cutoff
        return deleted
