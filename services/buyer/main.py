"""Buyer engine: consume feature snapshots (+ option chains from aegis:chains for the
straddle-implied move) -> compute the buyer section -> publish a SignalBlock (mechanics in
shared.bus.engine)."""

from __future__ import annotations

from services.buyer.compute import compute_buyer
from shared.bus.engine import ChainCache, EngineContext, EngineWorker
from shared.bus.lifecycle import serve
from shared.config import Settings
from shared.contract.document.buyer import BuyerData
from shared.market.chain_view import ChainViews


class BuyerWorker(EngineWorker):
    service = "buyer"
    engine = "buyer"
    model_names = ("buyer", "stats", "seller")  # seller: the volatility core (theta edge)

    def __init__(self, settings: Settings, consumer: str | None = None) -> None:
        super().__init__(settings, consumer)
        self.chains = ChainCache(self.client)
        self.chain_views = ChainViews(
            self.chains, settings.chain_max_age_s, settings.chain_spot_band
        )

    def refresh_inputs(self) -> None:
        self.chain_views.cache.refresh()

    def compute(self, ctx: EngineContext) -> BuyerData:
        return compute_buyer(ctx, self.chain_views.view(ctx.snapshot))


def main(settings: Settings | None = None) -> None:
    serve(BuyerWorker, settings)
