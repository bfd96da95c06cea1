"""The gateway over real Redis and real HTTP: REST, probes, metrics, auth, malformed
blocks, health, the output file, several replicas."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import orjson
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from shared.bus import replies, streams
from shared.config import Settings
from shared.contract.codec import encode, pack
from shared.contract.schemas import Bar, DeadLetter
from shared.market.clock import utc_iso_ms
from tests.block_factory import AS_OF, all_blocks, make_block
from tests.bus_reads import add, messages
from tests.gateway_harness import RunningGateway, publish, wait_for


@pytest.fixture()
def gateway(settings: Settings) -> Iterator[RunningGateway]:
    with RunningGateway(settings) as gw:
        yield gw


def sample(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return None


def get_doc(gw: RunningGateway) -> dict:
    return httpx.get(gw.url + "/api/v1/document").json()


def wait_sequence(gw: RunningGateway, sequence: int, message: str) -> None:
    wait_for(lambda: get_doc(gw)["sequence"] == sequence, 5, message)


def test_probes_and_document(gateway: RunningGateway, settings: Settings) -> None:
    assert httpx.get(gateway.url + "/healthz").status_code == 200
    ready = httpx.get(gateway.url + "/readyz")
    body = ready.json()
    assert ready.status_code == 503 and body["ready"] is False
    assert body["reasons"] == ["no blocks yet"]
    assert body["redis"] is True and body["blocks"] is False and body["failed_tasks"] == []
    assert get_doc(gateway)["market"] is None

    publish(settings, *all_blocks())
    wait_for(lambda: get_doc(gateway)["sequence"] == 4, 5, "four blocks applied")
    assert httpx.get(gateway.url + "/readyz").status_code == 200
    doc = get_doc(gateway)
    assert doc["schema_version"] == 1
    assert doc["generated_at"] == utc_iso_ms(AS_OF * 1000)  # event clock: newest as_of
    assert doc["seller"]["safe_range"]["coverage_target"] == 0.9
    assert doc["buyer"]["as_of"] == "2025-06-30T09:30:00.000Z"

    block = httpx.get(gateway.url + "/api/v1/blocks/direction").json()
    assert block == doc["direction"]
    assert httpx.get(gateway.url + "/api/v1/blocks/nope").status_code == 404
    schema = httpx.get(gateway.url + "/api/v1/schema").json()
    assert set(schema["properties"]) >= {"market", "direction", "seller", "buyer", "health"}
    assert "/api/v1/document" in httpx.get(gateway.url + "/openapi.json").json()["paths"]

    # the output file follows every change, written atomically
    wait_for(
        lambda: (
            settings.output_path.exists()
            and orjson.loads(settings.output_path.read_bytes())["sequence"] == 4
        ),
        5,
        "file",
    )
    assert orjson.loads(settings.output_path.read_bytes()) == doc


def test_duplicates_updates_and_older_blocks(gateway: RunningGateway, settings: Settings) -> None:
    publish(settings, make_block("market"))
    wait_for(lambda: get_doc(gateway)["sequence"] == 1, 5, "first block")
    publish(
        settings,
        make_block("market"),
        make_block("market", as_of=AS_OF - 60, spot=1.0),
        make_block("market", spot=25_700.0),
    )
    wait_for(lambda: get_doc(gateway)["sequence"] == 2, 5, "update applied")
    assert get_doc(gateway)["market"]["spot"] == 25_700.0
    metrics = httpx.get(gateway.url + "/metrics").text
    assert 'aegis_gateway_duplicates_total{engine="market"} 1.0' in metrics
    assert 'aegis_gateway_older_blocks_total{engine="market"} 1.0' in metrics
    assert "aegis_gateway_messages_consumed_total 4.0" in metrics
    assert sample(metrics, "aegis_gateway_last_block_as_of_seconds", engine="market") == AS_OF
    assert "aegis_gateway_push_latency_seconds_bucket" in metrics


def test_malformed_blocks_are_dead_lettered_once_and_never_break_the_document(
    settings: Settings, redis_client: redis.Redis
) -> None:
    publish(settings, *all_blocks())
    with RunningGateway(settings) as one, RunningGateway(settings) as two:
        for gw in (one, two):
            wait_sequence(gw, 4, "blocks loaded")
        good = make_block("market", as_of=AS_OF + 60)
        bad_fields = encode(make_block("market", as_of=AS_OF + 120))
        add(redis_client, streams.BLOCKS, {"t": "signal_block", "v": 1, "d": b"\xc1garbage"})
        add(redis_client, streams.BLOCKS, {**bad_fields, "v": 99})
        add(
            redis_client,
            streams.BLOCKS,
            {"t": "signal_block", "v": 1, "d": pack({"engine": "market", "as_of": "soon"})},
        )
        add(
            redis_client,
            streams.BLOCKS,
            encode(
                Bar(
                    symbol="NIFTY",
                    interval="1m",
                    open_time=AS_OF,
                    open=1,
                    high=1,
                    low=1,
                    close=1,
                    source="test",
                )
            ),
        )
        publish(settings, good)
        for gw in (one, two):
            wait_sequence(gw, 5, "good block after bad")
            doc = get_doc(gw)
            assert doc["market"]["as_of"] == utc_iso_ms((AS_OF + 60) * 1000)
            assert doc["direction"] is not None
            assert "aegis_gateway_invalid_blocks_total 4.0" in httpx.get(gw.url + "/metrics").text
        dead = wait_for(  # once each, though two replicas saw each
            lambda: (
                len(replies.xrange(redis_client, streams.DEAD_LETTER)) == 4
                and messages(redis_client, streams.DEAD_LETTER, DeadLetter)
            ),
            5,
            "dead letters",
        )
        assert {d.service for d in dead} == {"gateway"}
        reasons = " | ".join(sorted(d.reason for d in dead))
        assert "not msgpack" in reasons and "schema version '99'" in reasons
        assert "bar on the block stream" in reasons and "as_of" in reasons


def test_health_section_from_worker_reports(settings: Settings, redis_client: redis.Redis) -> None:
    wall = settings.model_copy(update={"clock": "wall"})
    now_ms = int(time.time() * 1000)
    report = {
        "service": "direction",
        "consumer": "c1",
        "status": "degraded",
        "degraded_reasons": ["model direction: manifest mismatch"],
        "lag": 2,
        "last_message_at": now_ms,
        "models": [],
    }
    redis_client.set(streams.health("direction", "c1"), orjson.dumps(report), ex=30)
    with RunningGateway(wall, health_poll_s=0.05) as gw:
        health = wait_for(
            lambda: (
                get_doc(gw)["health"]["engines"]["direction"]["replicas"] and get_doc(gw)["health"]
            ),
            5,
            "health read",
        )
    assert health["engines"]["direction"]["status"] == "degraded"
    assert health["engines"]["direction"]["last_message_at"] == utc_iso_ms(now_ms)
    assert health["engines"]["buyer"]["status"] == "down"
    assert health["status"] == "degraded"


def test_ingest_health_counts_while_running_and_a_finished_replay_does_not_linger(
    settings: Settings, redis_client: redis.Redis
) -> None:
    wall = settings.model_copy(update={"clock": "wall"})
    for service in ("features", "direction", "seller", "buyer"):
        redis_client.set(
            streams.health(service, "c1"),
            orjson.dumps(
                {"service": service, "consumer": "c1", "status": "ok", "degraded_reasons": []}
            ),
            ex=60,
        )

    key = streams.health("ingest", "yfinance")

    def ingest(finished: bool, reasons: list[str] | None = None) -> None:
        report = {
            "service": "ingest",
            "consumer": "yfinance",
            "finished": finished,
            "status": "degraded" if reasons else "ok",
            "degraded_reasons": reasons or [],
        }
        redis_client.set(key, orjson.dumps(report), ex=60)

    def health(gw: RunningGateway) -> dict:
        return get_doc(gw)["health"]

    ingest(finished=False, reasons=["yfinance: HTTP 429"])
    with RunningGateway(wall, health_poll_s=0.05) as gw:
        failing = wait_for(lambda: "ingest" in health(gw)["engines"] and health(gw), 5, "ingest")
        assert failing["status"] == "degraded"
        assert failing["engines"]["ingest"]["degraded_reasons"] == ["yfinance: HTTP 429"]
        ingest(finished=False)  # running fine, then its process dies (the report expires)
        wait_for(lambda: health(gw)["status"] == "ok", 5, "feed ok")
        redis_client.delete(key)
        dead = wait_for(
            lambda: health(gw)["engines"]["ingest"]["status"] == "down" and health(gw),
            5,
            "dead feed noticed",
        )
        assert dead["status"] == "degraded"
        assert dead["engines"]["ingest"]["degraded_reasons"] == [
            "no live report from source yfinance"
        ]
        ingest(finished=True)  # it comes back and finishes; later its report expires
        wait_for(lambda: health(gw)["status"] == "ok", 5, "finished replay is fine")
        assert health(gw)["engines"]["ingest"]["status"] == "ok"
        redis_client.delete(key)
        wait_for(lambda: "ingest" not in health(gw)["engines"], 5, "finished report expired")
        assert health(gw)["status"] == "ok"


def test_token_auth(settings: Settings) -> None:
    secured = settings.model_copy(update={"api_token": "s3cret"})
    with RunningGateway(secured) as gw:
        url = gw.url + "/api/v1/document"
        assert httpx.get(url).status_code == 401
        assert httpx.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.get(url, headers={"Authorization": "Bearer s3cret"}).status_code == 200
        in_url = httpx.get(url + "?token=s3cret")  # URLs end up in logs: never accepted
        assert in_url.status_code == 401 and "not accepted" in in_url.json()["detail"]
        assert httpx.get(gw.url + "/healthz").status_code == 200
        assert httpx.get(gw.url + "/").status_code == 200  # the page holds no data


def test_request_size_limit_and_cors(gateway: RunningGateway) -> None:
    big = httpx.post(gateway.url + "/api/v1/document", content=b"x" * 100_000)
    assert big.status_code == 413
    # same-origin by default: no CORS grant to another site
    cors = httpx.get(gateway.url + "/healthz", headers={"Origin": "http://example.test"})
    assert "access-control-allow-origin" not in cors.headers
