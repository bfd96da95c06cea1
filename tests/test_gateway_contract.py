"""The gateway enforces the document contract at run time: a block with a wrong type, a field
the contract does not know, a negative spot, a safe range whose lower bound is above its
upper, a NaN or an infinity in its data, or a size over the limit is refused with its reason
(dead-lettered once, counted by reason ``contract``) and the document stays as it was."""

from __future__ import annotations

import math
from typing import Any

import redis

from shared.bus import streams
from shared.config import Settings
from shared.contract.schemas import DeadLetter
from tests.block_factory import AS_OF, all_blocks, make_block
from tests.bus_reads import messages
from tests.gateway_harness import RunningGateway, publish, wait_for
from tests.test_gateway_resilience import get_doc, metric


def refused(gw: RunningGateway, engine: str) -> float:
    line = metric(gw, f'aegis_gateway_rejected_blocks_total{{engine="{engine}",reason="contract"}}')
    return float(line.split()[-1]) if line else 0.0


def changed(engine: str, group: str, **fields: Any) -> dict[str, Any]:
    """``extra`` for a block of ``engine`` whose ``group`` has ``fields`` changed or added."""
    return {"extra": {group: {**make_block(engine).data[group], **fields}}}


def test_blocks_that_break_the_contract_are_refused_and_counted(
    settings: Settings, redis_client: redis.Redis
) -> None:
    publish(settings, *all_blocks())
    small = settings.model_copy(update={"block_max_bytes": 50_000})
    broken: list[tuple[str, dict[str, Any], str]] = [
        ("seller", changed("seller", "safe_range", lower="abc"), "safe_range.lower: Expected"),
        ("seller", changed("seller", "safe_range", days_to_expiry=3.0), "Expected `int`"),
        ("seller", changed("seller", "safe_range", lower=26e3, upper=25e3), "is above upper"),
        ("market", {"extra": {"spot": -5.0}}, "market: spot: Expected `float` > 0.0"),
        ("market", {"extra": {"spot_ema": 1.0}}, "spot_ema: unknown field, not in the contract"),
        ("seller", changed("seller", "trap", band=1), "trap.band: unknown field"),
        (
            "seller",
            changed("seller", "trap", score=math.nan),
            "seller.trap.score is not a finite number",
        ),
        (
            "buyer",
            changed("buyer", "theta_edge", score=math.inf),
            "buyer.theta_edge.score is not a finite number",
        ),
        ("buyer", {"extra": {"bulk": "x" * 60_000}}, "bytes as JSON (limit 50000)"),
    ]
    with RunningGateway(small) as gw:
        wait_for(lambda: get_doc(gw)["sequence"] == 4, 5, "the four good blocks")
        before = get_doc(gw)
        for n, (engine, change, _) in enumerate(broken, start=1):
            publish(small, make_block(engine, as_of=AS_OF + 60 * n, **change))
        good = make_block("market", as_of=AS_OF + 3600, spot=25_700.0)
        publish(small, good)
        wait_for(lambda: get_doc(gw)["sequence"] == 5, 5, "the good block after the broken")
        after = get_doc(gw)
        assert after["market"]["spot"] == 25_700.0
        for engine in ("direction", "seller", "buyer"):
            assert after[engine] == before[engine] or (
                {k: v for k, v in after[engine].items() if k != "stale"}
                == {k: v for k, v in before[engine].items() if k != "stale"}
            )
        counted = sum(refused(gw, engine) for engine in ("market", "seller", "buyer"))
        assert counted == len(broken)
    letters = messages(redis_client, streams.DEAD_LETTER, DeadLetter)
    reasons = " | ".join(d.reason for d in letters)
    for _, _, reason in broken:
        assert reason in reasons, (reason, reasons)
