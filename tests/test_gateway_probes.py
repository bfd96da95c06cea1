"""Issue 13's probes and issue 10's findings 10, 11 and 13: /readyz says why it is not ready
(stale blocks, a feed down, the output file not written), staleness and feed metrics, output
write failures without partial files, resync flooding, and the document epoch."""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import time
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis
import websockets
from prometheus_client.parser import text_string_to_metric_families

from services.gateway.metrics import GatewayMetrics
from services.gateway.output import OutputWriter, write_atomic
from shared.bus import streams
from shared.config import Settings
from shared.market import calendar
from tests.block_factory import AS_OF, all_blocks, make_block
from tests.gateway_harness import RunningGateway, metric_value, publish, wait_for

TIMEOUT = 5.0


def metric(gw: RunningGateway, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(httpx.get(gw.url + "/metrics").text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return None


def ready(gw: RunningGateway) -> dict[str, Any]:
    return httpx.get(gw.url + "/readyz").json()


def doc(gw: RunningGateway) -> dict[str, Any]:
    return httpx.get(gw.url + "/api/v1/document").json()


async def recv(ws: Any, timeout: float = TIMEOUT) -> dict[str, Any]:
    return orjson.loads(await asyncio.wait_for(ws.recv(), timeout))


def fresh_daily_block(engine: str) -> Any:
    """The close of the last finished session: not stale until the next session's close."""
    today = date.fromtimestamp(time.time())
    day = calendar.previous_session(today)
    if calendar.daily_close_time(day) > time.time():
        day = calendar.previous_session(date.fromordinal(day.toordinal() - 1))
    block = make_block(
        engine, as_of=calendar.daily_close_time(day), kind="daily", freshness_limit_s=3 * 3600
    )
    return block.model_copy(update={"session_date": day.isoformat()})


# /readyz reasons and the metrics behind them ---------------------------------------------
def test_readyz_names_stale_blocks_and_the_stale_gauge_shows_them(settings: Settings) -> None:
    wall = settings.model_copy(update={"clock": "wall"})
    publish(wall, make_block("market"))  # 2025-06-30 15:00 IST: long stale on the wall clock
    with RunningGateway(wall, tick_s=0.05) as gw:
        wait_for(lambda: doc(gw)["market"], TIMEOUT, "the block")
        probe = httpx.get(gw.url + "/readyz")
        assert probe.status_code == 503 and probe.json()["reasons"] == ["stale blocks: market"]
        assert metric(gw, "aegis_gateway_block_stale", engine="market") == 1.0
        publish(wall, fresh_daily_block("market"))
        wait_for(lambda: httpx.get(gw.url + "/readyz").status_code == 200, TIMEOUT, "ready")
        assert ready(gw)["reasons"] == []
        assert metric(gw, "aegis_gateway_block_stale", engine="market") == 0.0


def test_readyz_is_false_with_a_reason_when_a_feed_stops_reporting(
    settings: Settings, redis_client: redis.Redis
) -> None:
    wall = settings.model_copy(update={"clock": "wall"})
    publish(wall, fresh_daily_block("market"))
    last_message_at = int(time.time() * 1000)
    report = {
        "service": "ingest",
        "consumer": "yfinance",
        "status": "ok",
        "degraded_reasons": [],
        "finished": False,
        "last_message_at": last_message_at,
        "lag": 0,
    }
    redis_client.set(streams.health("ingest", "yfinance"), orjson.dumps(report), ex=30)
    with RunningGateway(wall, health_poll_s=0.05) as gw:
        wait_for(lambda: metric(gw, "aegis_gateway_feed_up", source="yfinance") == 1.0, 5, "up")
        assert ready(gw)["ready"] is True
        assert metric(gw, "aegis_gateway_feed_lag", source="yfinance") == 0.0
        assert metric(gw, "aegis_gateway_feed_last_message_seconds", source="yfinance") == (
            last_message_at / 1000
        )
        redis_client.delete(streams.health("ingest", "yfinance"))  # the feed died
        wait_for(lambda: not ready(gw)["ready"], TIMEOUT, "readyz false")
        assert ready(gw)["reasons"] == ["feed down: source yfinance stopped reporting"]
        assert metric(gw, "aegis_gateway_feed_up", source="yfinance") == 0.0


# The output file -------------------------------------------------------------------------
def test_a_failed_write_leaves_no_partial_file_and_keeps_the_old_one(tmp_path: Path) -> None:
    """RLIMIT_FSIZE makes the kernel refuse the write part way (EFBIG), as a full disk does."""
    path = tmp_path / "aegismatrix.json"
    write_atomic(path, b'{"old": true}\n')
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, limits[1]))
    try:
        with pytest.raises(OSError):
            write_atomic(path, b"x" * 100_000)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, previous)
    assert path.read_bytes() == b'{"old": true}\n'
    assert os.listdir(tmp_path) == ["aegismatrix.json"]


async def test_the_writer_reports_a_failure_until_a_write_succeeds(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the output folder should be")
    metrics = GatewayMetrics()
    writer = OutputWriter(blocker / "aegismatrix.json", metrics)
    writer.submit(b"{}")
    await writer.flush()
    assert writer.status()["ok"] is False and writer.failures == 1
    assert writer.last_error is not None and "not-a-dir" in writer.last_error
    assert metric_value(metrics.output_ok) == 0
    blocker.unlink()
    await writer.flush()  # the failed document is retried even without a newer one
    assert writer.status()["ok"] is True and (blocker / "aegismatrix.json").read_bytes() == b"{}"


@pytest.mark.slow
def test_output_write_failures_show_in_readyz_healthz_and_metrics(
    settings: Settings, tmp_path: Path
) -> None:
    blocker = tmp_path / "blocked"
    blocker.write_text("not a folder")
    broken = settings.model_copy(update={"output_path": blocker / "aegismatrix.json"})
    publish(broken, *all_blocks())
    with RunningGateway(broken) as gw:
        wait_for(lambda: metric(gw, "aegis_gateway_output_ok") == 0.0, TIMEOUT, "a failure")
        body = ready(gw)
        assert body["ready"] is False and len(body["reasons"]) == 1
        assert body["reasons"][0].startswith("output file not written: ")
        assert httpx.get(gw.url + "/healthz").json()["output"]["ok"] is False
        assert (metric(gw, "aegis_gateway_output_write_failures_total") or 0) >= 1
        blocker.unlink()  # space is back: the retry writes the document
        wait_for(lambda: ready(gw)["ready"], 10, "ready after the retry")
        assert orjson.loads((blocker / "aegismatrix.json").read_bytes())["sequence"] == 4


# Resync flooding -------------------------------------------------------------------------
@pytest.mark.slow
async def test_a_resync_flood_costs_one_snapshot_per_interval_and_few_log_lines(
    settings: Settings, capfd: pytest.CaptureFixture[str]
) -> None:
    limited = settings.model_copy(update={"ws_resync_interval_s": 1.0})
    publish(limited, *all_blocks())
    with RunningGateway(limited) as gw:
        await asyncio.to_thread(wait_for, lambda: doc(gw)["sequence"] == 4, TIMEOUT, "blocks")
        async with websockets.connect(gw.ws_url, max_size=None) as ws:
            assert (await recv(ws))["type"] == "snapshot"
            request = orjson.dumps({"type": "resync"}).decode()
            sending_started = time.monotonic()
            for _ in range(2000):
                await ws.send(request)
            sending_s = time.monotonic() - sending_started
            snapshots = 0
            deadline = time.monotonic() + 1.5
            while (left := deadline - time.monotonic()) > 0:
                try:
                    raw = await asyncio.wait_for(ws.recv(), left)
                except TimeoutError:
                    break
                snapshots += orjson.loads(raw)["type"] == "snapshot"
            # one snapshot per second at most, the first one a second after the connect's
            assert 1 <= snapshots <= 2 + sending_s, (snapshots, sending_s)

            def requests_seen() -> tuple[float, float] | None:
                coalesced = metric(gw, "aegis_gateway_websocket_resyncs_coalesced_total") or 0
                served = metric(gw, "aegis_gateway_websocket_resyncs_total", reason="client_gap")
                return (served or 0, coalesced) if (served or 0) + coalesced == 2000 else None

            served, _ = await asyncio.to_thread(wait_for, requests_seen, 10, "all 2000 handled")
            assert served <= 2 + sending_s + 1.5  # one per pending window
    out, err = capfd.readouterr()
    assert (out + err).count("ws_resync") <= 1  # one line per client per 10 s


# Epoch and sequence ----------------------------------------------------------------------
async def test_wall_clock_epoch_is_the_start_time_and_grows_with_each_restart(
    settings: Settings,
) -> None:
    wall = settings.model_copy(update={"clock": "wall", "ws_heartbeat_s": 0.1})
    publish(wall, *all_blocks())
    epochs = []
    for _ in range(2):
        before = int(time.time() * 1000)
        with RunningGateway(wall) as gw:
            await asyncio.to_thread(wait_for, lambda gw=gw: doc(gw)["market"], TIMEOUT, "loaded")
            epoch = doc(gw)["epoch"]
            assert before <= epoch <= int(time.time() * 1000)
            async with websockets.connect(gw.ws_url) as ws:
                snapshot = await recv(ws)
                assert snapshot["epoch"] == epoch == snapshot["document"]["epoch"]
                while (message := await recv(ws))["type"] != "heartbeat":
                    pass
                assert message["epoch"] == epoch
            epochs.append(epoch)
    assert epochs[1] > epochs[0]


def test_event_clock_epoch_and_sequence_do_not_depend_on_engine_replicas(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """Replicas publish the same block twice (redelivery after a claim): the document - epoch
    and sequence included - is the same as with one replica. A restart after new blocks opens
    a larger epoch."""
    blocks = [make_block(e, as_of=AS_OF + 60 * i) for i in range(3) for e in ("market", "buyer")]
    twice = [b for block in blocks for b in (block, block)]
    # the gateway starts on an empty stream, then the blocks arrive (a replay from the start)
    for published in (blocks, twice):
        redis_client.flushall()
        with RunningGateway(settings) as gw:
            wait_for(lambda: gw.app.state.consumer.last_id is not None, TIMEOUT, "loaded")
            assert doc(gw)["epoch"] == 0
            publish(settings, *published)
            wait_for(lambda: doc(gw)["sequence"] == 6, TIMEOUT, "six changes")
            wait_for(
                lambda: orjson.loads(settings.output_path.read_bytes())["sequence"] == 6,
                TIMEOUT,
                "file written",
            )
        if published is blocks:
            first = settings.output_path.read_bytes()
    assert settings.output_path.read_bytes() == first
    with RunningGateway(settings) as gw:  # a restart: the newest loaded as_of opens the epoch
        wait_for(lambda: doc(gw)["sequence"] == 2, TIMEOUT, "the latest two blocks")
        assert doc(gw)["epoch"] == (AS_OF + 120) * 1000
