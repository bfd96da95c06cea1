"""Seller engine: consume feature snapshots (+ option chains from aegis:chains) -> compute
the seller section -> publish a SignalBlock (mechanics in shared.bus.engine)."""

from __future__ import annotations

from services.seller.compute import compute_seller
from shared.bus.engine import ChainCache, EngineContext, EngineWorker
from shared.bus.lifecycle import serve
from shared.config import Settings
from shared.contract.document.seller import SellerData
from shared.market.chain_view import ChainViews
from shared.signals.positioning import TREND_SESSIONS


class SellerWorker(EngineWorker):
    service = "seller"
    engine = "seller"
    model_names = ("seller", "stats")

    def __init__(self, settings: Settings, consumer: str | None = None) -> None:
        super().__init__(settings, consumer)
        self.chains = ChainCache(self.client)
        self.chain_views = ChainViews(
            self.chains, settings.chain_max_age_s, settings.chain_spot_band
        )

    def refresh_inputs(self) -> None:
        self.chain_views.cache.refresh()

    def compute(self, ctx: EngineContext) -> SellerData:
        return compute_seller(  # the cache was refreshed by refresh_inputs
            ctx,
            self.chain_views.view(ctx.snapshot),
            self.chain_views.cache.daily_known_at(ctx.snapshot.as_of, TREND_SESSIONS + 1),
        )


def main(settings: Settings | None = None) -> None:
    serve(SellerWorker, settings)
