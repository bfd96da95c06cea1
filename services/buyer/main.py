"""Buyer engine: consume feature snapshots -> compute the buyer section -> publish a
SignalBlock (mechanics in shared.engine)."""

from __future__ import annotations

from typing import Any

from services.buyer.compute import compute_buyer
from shared.config import Settings, get_settings
from shared.engine import EngineContext, EngineWorker
from shared.logs import configure_logging


class BuyerWorker(EngineWorker):
    service = "buyer"
    engine = "buyer"
    model_names = ("buyer", "stats", "seller")  # seller: the volatility core (theta edge)

    def compute(self, ctx: EngineContext) -> dict[str, Any]:
        return compute_buyer(ctx)


def main(settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_json)
    BuyerWorker(settings).serve()
