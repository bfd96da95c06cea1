"""Seller engine: consume feature snapshots (+ option chains from aegis:chains) -> compute
the seller section -> publish a SignalBlock (mechanics in shared.engine)."""

from __future__ import annotations

from typing import Any

from services.seller.compute import compute_seller_batch
from shared.config import Settings, get_settings
from shared.engine import ChainCache, EngineContext, EngineWorker
from shared.logs import configure_logging


class SellerWorker(EngineWorker):
    service = "seller"
    engine = "seller"
    model_names = ("seller", "stats")

    def __init__(self, settings: Settings, consumer: str | None = None) -> None:
        super().__init__(settings, consumer)
        self.chains = ChainCache(self.client)

    def refresh_inputs(self) -> None:
        self.chains.refresh()

    def compute(self, ctx: EngineContext) -> dict[str, Any]:
        return self.compute_batch([ctx])[0]

    def compute_batch(self, contexts: list[EngineContext]) -> list[dict[str, Any]]:
        return compute_seller_batch(
            contexts, [self.chains.for_snapshot(ctx.snapshot) for ctx in contexts]
        )


def main(settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_json)
    SellerWorker(settings).serve()
