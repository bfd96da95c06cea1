"""Redis that lost its data (restarted empty, or FLUSHALL under load) is noticed, not served as
if nothing happened: every process sees the run epoch key gone or replaced, drops what it
holds in memory and rebuilds from what Redis has, and says so in its health; the gateway's
readiness says so too. On a real redis-server."""

from __future__ import annotations

import httpx
import orjson
import pytest
import redis

from shared.bus import streams
from shared.config import Settings
from tests.block_factory import AS_OF, all_blocks
from tests.gateway_harness import RunningGateway, publish
from tests.pipeline import feature_payloads, ingest, run_features
from tests.waiting import wait_for


@pytest.mark.slow
def test_a_flushed_redis_is_rebuilt_by_the_replay_not_discarded_as_old(
    settings: Settings, redis_client: redis.Redis
) -> None:
    ingest(settings)
    features = run_features(settings)
    clean = feature_payloads(redis_client)
    assert len(clean) > 1400 and redis_client.get(streams.EPOCH)

    redis_client.flushall()  # the data is gone; the worker still holds its state in memory
    ingest(settings)  # a replay resumes from what Redis holds: nothing, so from the start
    features.run(max_idle_reads=2)
    # without noticing, the worker would have taken every bar for one it had already seen
    assert feature_payloads(redis_client) == clean
    assert redis_client.xlen(streams.DEAD_LETTER) == 0
    assert any("Redis lost its data" in r for r in features.epoch.degraded_reasons())
    [raw] = [redis_client.get(k) for k in redis_client.keys(streams.health("features", "*"))]
    assert raw is not None
    report = orjson.loads(raw)
    assert any("Redis lost its data" in r for r in report["degraded_reasons"])


def test_a_checkpoint_written_across_the_flush_is_not_restored(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """FLUSHALL while a features batch is in flight: its transaction lands in the emptied
    Redis (the acknowledgement fails, the checkpoint of the old streams is written). The
    worker must not restore that state, or it takes every re-published bar for one it has
    seen (measured: half a replay's snapshots never published again)."""
    ingest(settings)
    features = run_features(settings)
    clean = feature_payloads(redis_client)
    in_flight = redis_client.get(streams.checkpoint("features"))
    assert in_flight is not None

    redis_client.flushall()
    redis_client.set(streams.checkpoint("features"), in_flight)  # the batch landing after it
    ingest(settings)
    features.run(max_idle_reads=2)
    assert feature_payloads(redis_client) == clean


def test_the_gateway_starts_a_new_document_after_redis_lost_its_data(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """The document was made from data Redis no longer has: the gateway is not ready, says
    why, and starts a new document (a new epoch) that the re-published blocks fill again,
    though they are older than the ones it showed."""
    publish(settings, *all_blocks(as_of=AS_OF + 600, spot=25_900.0))
    with RunningGateway(settings, health_poll_s=0.1) as gw:
        wait_for(lambda: doc(gw)["market"], 5, "the document")
        epoch = doc(gw)["epoch"]
        wait_for(lambda: redis_client.get(streams.EPOCH), 5, "the gateway to see the epoch")
        redis_client.flushall()

        def reasons() -> list[str]:
            body = httpx.get(gw.url + "/readyz").json()
            return [r for r in body.get("reasons", []) if "Redis lost its data" in r]

        assert wait_for(reasons, 5, "readiness to say Redis lost its data")
        publish(settings, *all_blocks(as_of=AS_OF, spot=25_600.0))  # the replay, again
        wait_for(lambda: (doc(gw)["market"] or {}).get("spot") == 25_600.0, 5, "re-filled")
        assert doc(gw)["epoch"] != epoch
        # every section back: ready again (the workers' health still names the loss)
        wait_for(lambda: not reasons(), 5, "readiness once the new document is whole")


def doc(gw: RunningGateway) -> dict:
    return httpx.get(gw.url + "/api/v1/document").json()
