"""How long the history keeps its detail: every block and point of the last ``detail_s`` of
stream time; before that, the last block per engine and the last point per series of each
``step_s``. Thinning follows each engine's own stream time (the engines of a replay run at
different speeds: one may be a month behind another), in one pass per ``pass_s`` of it (a
day: a pass costs one statement per engine and series whatever it deletes), so the detail
kept reaches back between ``detail_s`` and ``detail_s + pass_s``. A block that arrives
after its step was thinned (a lagging replica) has that step thinned again."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from shared.contract.schemas import SignalBlock
from shared.history.store import HistoryStore

DAY_S = 86_400


@dataclass
class Retention:
    detail_s: int
    step_s: int
    pass_s: int = DAY_S
    # per engine: as_of below which every step is thinned (this process)
    thinned_to: dict[str, int] = field(default_factory=dict)

    def advance(self, store: HistoryStore, written: Iterable[SignalBlock]) -> int:
        """Thin what the blocks just written moved out of the detail window, per engine;
        rows deleted."""
        spans: dict[str, tuple[int, int]] = {}
        for b in written:
            oldest, newest = spans.get(b.engine, (b.as_of, b.as_of))
            spans[b.engine] = (min(oldest, b.as_of), max(newest, b.as_of))
        deleted = 0
        for engine, (oldest, newest) in spans.items():
            done = self.thinned_to.get(engine, 0)
            cutoff = self._step_start(newest - self.detail_s)
            late = oldest < done
            if not late and cutoff - done < max(self.pass_s, self.step_s):
                continue
            since = self._step_start(oldest) if late else done
            before = max(cutoff, done)
            deleted += store.downsample(since, before, self.step_s, (engine,))
            self.thinned_to[engine] = before
        return deleted

    def _step_start(self, t: int) -> int:
        return t - t % self.step_s
