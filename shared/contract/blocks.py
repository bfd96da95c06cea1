"""Building signal blocks: the stamps every engine's block carries."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from shared.config import Settings
from shared.contract.codec import block_digest
from shared.contract.schemas import Engine, FeatureSnapshot, ModelRef, SignalBlock
from shared.market.clock import Clock


def freshness_limit_s(settings: Settings, kind: str) -> int:
    return settings.freshness_intraday_s if kind == "intraday" else settings.freshness_daily_s


def build_block(
    engine: Engine,
    snapshot: FeatureSnapshot,
    data: dict[str, Any],
    *,
    clock: Clock,
    settings: Settings,
    models: Iterable[ModelRef] = (),
    degraded: Iterable[str] = (),
) -> SignalBlock:
    """Stamp ``data`` as ``engine``'s block for the bar ``snapshot`` reflects. The digest
    covers the content only, so a redelivered snapshot yields an identical digest; the data
    is packed once for the digest and the block's encoding
    (``shared.contract.codec.block_digest``)."""
    models, degraded = tuple(models), tuple(degraded)
    return SignalBlock(
        engine=engine,
        as_of=snapshot.as_of,
        session_date=snapshot.session_date,
        kind=snapshot.kind,
        computed_at=clock.now_ms(),
        freshness_limit_s=freshness_limit_s(settings, snapshot.kind),
        models=models,
        degraded=degraded,
        data=data,
        digest=block_digest(data, models, degraded),
    )
