"""Seller engine: consume feature snapshots (+ option chains from aegis:chains) -> compute
the seller section -> publish a SignalBlock (mechanics in shared.engine)."""

from __future__ import annotations

from typing import Any

from services.seller.compute import compute_seller
from shared.chain_view import ChainViews
from shared.config import Settings
from shared.engine import ChainCache, EngineContext, EngineWorker
from shared.lifecycle import serve


class SellerWorker(EngineWorker):
    service = "seller"
    engine = "seller"
    model_names = ("seller", "stats")

    def __init__(self, settings: Settings, consumer: str | None = None) -> None:
        super().__init__(settings, consumer)
        self.chains = ChainCache(self.client)
        self.chain_views = ChainViews(self.chains, settings.chain_max_age_s)

    def refresh_inputs(self) -> None:
        self.chains.refresh()

    def compute(self, ctx: EngineContext) -> dict[str, Any]:
        newest = self.chains.for_snapshot(ctx.snapshot)  # refresh_inputs read the stream
        return compute_seller(ctx, newest, self.chain_views.view(ctx.snapshot, refresh=False))


def main(settings: Settings | None = None) -> None:
    serve(SellerWorker, settings)
