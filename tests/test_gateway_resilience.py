"""The gateway keeps going past a block it cannot apply, and a background task that dies
turns its probes red instead of leaving a frozen document behind a green /readyz."""

from __future__ import annotations

import asyncio
import time

import httpx
import orjson
import pytest
import redis

from services.gateway.tasks import SupervisedTasks
from shared.bus import streams
from shared.config import Settings
from shared.market.clock import utc_iso_ms
from tests.block_factory import AS_OF, make_block
from tests.gateway_harness import RunningGateway, publish, wait_for

DAY = 24 * 3600


def get_doc(gw: RunningGateway) -> dict:
    return httpx.get(gw.url + "/api/v1/document").json()


def metric(gw: RunningGateway, line_start: str) -> str | None:
    text = httpx.get(gw.url + "/metrics").text
    return next((line for line in text.splitlines() if line.startswith(line_start)), None)


def test_a_block_that_makes_on_block_raise_does_not_stop_later_blocks(settings: Settings) -> None:
    # Valid messages whose data JSON cannot hold (integer keys, bytes: msgpack can): had they
    # reached on_block, every later document would fail; the contract refuses them first.
    int_keys = make_block("buyer", extra={"by_strike": {25_000: 0.4}})
    publish(
        settings, make_block("market"), make_block("direction"), make_block("seller"), int_keys
    )  # the odd buyer block sits in the latest-blocks hash at start-up
    with RunningGateway(settings) as gw:
        wait_for(lambda: get_doc(gw)["sequence"] == 3, 5, "the three good latest blocks")
        # on the stream: an odd block far ahead in time, then a good one
        publish(
            settings,
            make_block("market", as_of=AS_OF + 10 * DAY, spot=1.0, extra={"blob": b"\x00\x01"}),
            make_block("market", as_of=AS_OF + 120, spot=25_700.0),
        )
        wait_for(lambda: get_doc(gw)["sequence"] == 4, 5, "the good block after the odd one")
        doc = get_doc(gw)
        assert doc["market"]["spot"] == 25_700.0
        assert doc["market"]["as_of"] == utc_iso_ms((AS_OF + 120) * 1000)
        assert doc["market"]["stale"] is False  # the odd block did not move the event clock
        assert doc["buyer"] is None and doc["direction"] is not None
        # both odd blocks break the contract (unknown fields): refused and counted, not errors
        refused = 'aegis_gateway_rejected_blocks_total{engine="%s",reason="contract"} 1.0'
        assert metric(gw, refused.split("}")[0] % "buyer") == refused % "buyer"
        assert metric(gw, refused.split("}")[0] % "market") == refused % "market"
        assert metric(gw, "aegis_gateway_block_errors_total") == (
            "aegis_gateway_block_errors_total 0.0"
        )
        ready = httpx.get(gw.url + "/readyz")
        assert ready.status_code == 200 and ready.json()["failed_tasks"] == []
        wait_for(
            lambda: (
                settings.output_path.exists()
                and orjson.loads(settings.output_path.read_bytes())["sequence"] == 4
            ),
            5,
            "the file follows",
        )

        publish(settings, make_block("buyer", as_of=AS_OF + 180))
        wait_for(lambda: get_doc(gw)["buyer"] is not None, 5, "a good buyer block later")
        assert get_doc(gw)["sequence"] == 5


def test_a_dead_background_task_turns_readyz_and_healthz_red(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish(settings, make_block("market"))
    gw = RunningGateway(settings)

    async def broken_poller(interval_s: float) -> None:
        raise RuntimeError("poller bug")

    monkeypatch.setattr(gw.app.state.consumer, "poll_health", broken_poller)
    with gw:
        ready = wait_for(
            lambda: (r := httpx.get(gw.url + "/readyz")).status_code == 503 and r, 5, "readyz red"
        )
        body = ready.json()
        assert body["ready"] is False and body["failed_tasks"] == ["health_poller"]
        assert body["reasons"] == ["background tasks ended: health_poller"]
        alive = httpx.get(gw.url + "/healthz")
        assert alive.status_code == 503
        assert alive.json()["status"] == "failed"
        assert alive.json()["failed_tasks"] == ["health_poller"]
        assert gw.app.state.tasks.failed == {"health_poller": "RuntimeError: poller bug"}


def test_odd_health_reports_do_not_stop_health_polling(
    settings: Settings, redis_client: redis.Redis
) -> None:
    wall = settings.model_copy(update={"clock": "wall"})
    redis_client.set(streams.health("odd", "x"), b"[1, 2, 3]", ex=30)
    with RunningGateway(wall, health_poll_s=0.05) as gw:
        report = {
            "service": "direction",
            "consumer": "c1",
            "status": "ok",
            "degraded_reasons": [],
            "last_message_at": int(time.time() * 1000),
        }
        redis_client.set(streams.health("direction", "c1"), orjson.dumps(report), ex=30)
        wait_for(
            lambda: get_doc(gw)["health"]["engines"]["direction"]["replicas"] == 1,
            5,
            "a later good report shows",
        )
        assert gw.app.state.tasks.healthy


async def test_background_tasks_report_endings_outside_shutdown_only() -> None:
    tasks = SupervisedTasks()

    async def crashes() -> None:
        raise ValueError("bug")

    async def returns() -> None:
        return None

    async def runs() -> None:
        await asyncio.Event().wait()

    tasks.start("crashes", crashes())
    tasks.start("returns", returns())
    tasks.start("runs", runs())
    await asyncio.wait(tasks.tasks[:2])  # the done callbacks, added first, have run
    assert tasks.failed == {"crashes": "ValueError: bug", "returns": "returned"}
    assert not tasks.healthy
    await tasks.stop()  # cancelling at shutdown is not a failure
    assert set(tasks.failed) == {"crashes", "returns"}
    assert all(t.done() for t in tasks.tasks)

    stray = SupervisedTasks()
    stray.start("runs", runs())
    await asyncio.sleep(0)  # let it start
    stray.tasks[0].cancel()
    await asyncio.wait(stray.tasks)
    assert stray.failed == {"runs": "cancelled"}
    await stray.stop()
