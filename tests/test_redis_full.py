"""Back-pressure instead of crashes: at maxmemory (noeviction) a worker's writes are refused
with OOM; the worker waits with backoff like for an outage, does not exit, and publishes what
it holds once memory frees. Before, every engine exited with OutOfMemoryError."""

from __future__ import annotations

import redis

from services.seller.main import SellerWorker
from shared.bus.publish import Bus
from shared.config import Settings
from tests.engines_support import daily_snapshot
from tests.test_engines import blocks, running, wait_blocks
from tests.waiting import wait_for


def test_a_full_redis_makes_the_seller_wait_not_exit(
    settings: Settings, redis_client: redis.Redis
) -> None:
    Bus(redis_client, settings).publish(daily_snapshot("2025-06-27"))
    used = int(redis_client.info("memory")["used_memory"])
    redis_client.config_set("maxmemory", str(used // 2))  # every write refused (OOM)
    try:
        with running(SellerWorker, settings) as worker:
            wait_for(lambda: worker.stats["reconnects"] >= 2, 20, "the seller backing off")
            assert blocks(redis_client, "seller") == []
            redis_client.config_set("maxmemory", "0")  # memory frees
            (block,) = wait_blocks(redis_client, "seller", 1)
            assert block.session_date
    finally:
        redis_client.config_set("maxmemory", "0")
