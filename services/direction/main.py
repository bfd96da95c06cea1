"""Direction engine: consume feature snapshots -> compute the direction section -> publish
a SignalBlock (mechanics in shared.bus.engine)."""

from __future__ import annotations

from collections.abc import Sequence

from services.direction.compute import compute_direction, compute_direction_batch
from shared.bus.engine import EngineContext, EngineWorker
from shared.bus.lifecycle import serve
from shared.config import Settings
from shared.contract.document.direction import DirectionData


class DirectionWorker(EngineWorker):
    service = "direction"
    engine = "direction"
    model_names = ("direction", "direction_intraday")

    def compute(self, ctx: EngineContext) -> DirectionData:
        return compute_direction(ctx)

    def compute_batch(self, contexts: list[EngineContext]) -> Sequence[DirectionData]:
        return compute_direction_batch(contexts)


def main(settings: Settings | None = None) -> None:
    serve(DirectionWorker, settings)
