"""Ingest → features on a real Redis: determinism, bad input, crashes, Redis restarts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest
import redis

from services.features.main import FeaturesWorker
from services.ingest.sources.file_replay import ReplayWindow
from shared.bus import streams
from shared.config import PROJECT_ROOT, Settings
from shared.contract.schemas import DeadLetter, FeatureSnapshot
from shared.redis_ops.server import RedisServer
from tests.bus_reads import messages
from tests.pipeline import DATA_DIR, feature_payloads, ingest, run_features, stream_payloads
from tests.ports import free_port
from tests.waiting import wait_for


@pytest.mark.slow
def test_replay_twice_gives_identical_feature_streams(
    settings: Settings, redis_client: redis.Redis
) -> None:
    counts = ingest(settings)
    run_features(settings)
    first = feature_payloads(redis_client)
    first_blocks = stream_payloads(redis_client, streams.BLOCKS)
    redis_client.flushall()
    ingest(settings)
    run_features(settings)
    assert counts["published"] > 1500 and counts["dead_lettered"] == 0
    assert len(first) > 1400
    assert feature_payloads(redis_client) == first
    assert stream_payloads(redis_client, streams.BLOCKS) == first_blocks


@pytest.mark.slow
def test_replaying_into_the_same_redis_publishes_nothing_twice(
    settings: Settings, redis_client: redis.Redis
) -> None:
    first = ingest(settings)
    second = ingest(settings)
    assert second["published"] == 0 and second["duplicate"] == first["published"]
    assert second["dead_lettered"] == 0


def write_bad_daily_files(folder: Path) -> None:
    nifty = pd.read_csv(DATA_DIR / "nifty50_daily.csv")
    nifty = nifty[(nifty["date"] >= "2021-01-01") & (nifty["date"] <= "2021-03-31")]
    rows = nifty.to_dict("records")
    rows[10]["close"] = float("nan")  # NaN price
    rows[20]["low"] = -5.0  # negative price
    rows[30]["high"] = rows[30]["low"] - 10  # OHLC inconsistent
    rows.insert(41, dict(rows[40]))  # exact duplicate: skipped, not reprocessed
    rows.insert(46, {**rows[45], "close": rows[45]["close"] + 1})  # conflicting duplicate
    rows.insert(51, rows.pop(5))  # out of order: a session arriving late
    pd.DataFrame(rows).to_csv(folder / "nifty50_daily.csv", index=False)
    vix = pd.read_csv(DATA_DIR / "india_vix_daily.csv")
    vix[(vix["date"] >= "2021-01-01") & (vix["date"] <= "2021-03-31")].to_csv(
        folder / "india_vix_daily.csv", index=False
    )


def test_malformed_bars_are_dead_lettered_and_good_ones_flow(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    write_bad_daily_files(tmp_path)
    window = ReplayWindow(include_intraday=False)
    counts = ingest(settings, window, data_dir=tmp_path)
    reasons = [d.reason for d in messages(redis_client, streams.DEAD_LETTER, DeadLetter)]
    assert counts["dead_lettered"] == 5 == len(reasons)
    assert counts["duplicate"] == 1
    joined = "\n".join(reasons)
    for expected in ("close", "low is not positive", "below low", "closed", "older"):
        assert expected in joined, (expected, reasons)
    good_nifty = len(
        pd.read_csv(DATA_DIR / "nifty50_daily.csv").query("'2021-01-01' <= date <= '2021-03-31'")
    )
    run_features(settings)
    daily = messages(redis_client, streams.FEATURES, FeatureSnapshot)
    assert len(daily) == good_nifty - 4  # every bar not dead-lettered made it through
    assert all(s.kind == "daily" for s in daily)


def features_process(
    settings: Settings, consumer: str, claim_idle_ms: int = 500
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "AEGIS_REDIS_URL": settings.redis_url,
        "AEGIS_CLOCK": "event",
        "AEGIS_CLAIM_IDLE_MS": str(claim_idle_ms),
        "AEGIS_BLOCK_MS": "100",
        "AEGIS_READ_COUNT": "64",
        "AEGIS_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from shared.bus.lifecycle import serve;"
            "from services.features.main import FeaturesWorker;"
            f"serve(FeaturesWorker, consumer={consumer!r})",
        ],
        env=env,
        cwd=PROJECT_ROOT,
    )


@pytest.mark.slow
def test_worker_killed_mid_batch_loses_and_duplicates_nothing(
    settings: Settings, redis_client: redis.Redis
) -> None:
    ingest(settings)
    run_features(settings)
    reference = feature_payloads(redis_client)
    redis_client.flushall()
    ingest(settings)

    first = features_process(settings, "replica-a")
    wait_for(lambda: redis_client.xlen(streams.FEATURES) > 300, message="replica a working")
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert redis_client.xlen(streams.FEATURES) < len(reference)

    second = features_process(settings, "replica-b")
    try:
        wait_for(
            lambda: (
                redis_client.xlen(streams.FEATURES) >= len(reference)
                and redis_client.xpending(streams.BARS, "features")["pending"] == 0
            ),
            message="replica b finishing",
        )
    finally:
        second.terminate()
        second.wait()
    assert feature_payloads(redis_client) == reference


@pytest.mark.slow
def test_services_resume_after_redis_restarts(tmp_path: Path) -> None:
    server = RedisServer(free_port(), "restart-secret", tmp_path / "redis").start()
    settings = Settings(
        redis_url=server.url, clock="event", block_ms=100, claim_idle_ms=1000, embedded_redis=False
    )
    try:
        ingest(settings)
        client = server.client()
        run_features(settings)
        reference = feature_payloads(client)
        client.flushall()

        ingest(settings)
        worker = run_in_thread(settings)
        wait_for(lambda: client.xlen(streams.FEATURES) > 200, message="features flowing")
        server.stop()  # a clean restart: AOF is complete
        server.start()
        wait_for(lambda: worker.stats["reconnects"] > 0, message="worker noticed the restart")
        wait_for(
            lambda: (
                client.xlen(streams.FEATURES) >= len(reference)
                and client.xpending(streams.BARS, "features")["pending"] == 0
            ),
            message="features catching up after restart",
        )
        worker.stop()
        assert feature_payloads(client) == reference
    finally:
        server.stop()


def run_in_thread(settings: Settings) -> FeaturesWorker:
    worker = FeaturesWorker(settings, "features-restart")
    threading.Thread(target=worker.run, daemon=True).start()
    return worker
