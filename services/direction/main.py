"""Direction engine: consume feature snapshots -> compute the direction section -> publish
a SignalBlock (mechanics in shared.engine)."""

from __future__ import annotations

from typing import Any

from services.direction.compute import compute_direction, compute_direction_batch
from shared.config import Settings, get_settings
from shared.engine import EngineContext, EngineWorker
from shared.logs import configure_logging


class DirectionWorker(EngineWorker):
    service = "direction"
    engine = "direction"
    model_names = ("direction", "direction_intraday")

    def compute(self, ctx: EngineContext) -> dict[str, Any]:
        return compute_direction(ctx)

    def compute_batch(self, contexts: list[EngineContext]) -> list[dict[str, Any]]:
        return compute_direction_batch(contexts)


def main(settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_json)
    DirectionWorker(settings).serve()
