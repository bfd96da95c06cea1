"""Helpers that run ingest and the features worker against a real Redis in tests."""

from __future__ import annotations

from pathlib import Path

import redis

from services.features.main import FeaturesWorker
from services.ingest.main import IngestService
from services.ingest.sources.file_replay import FileReplaySource, ReplayWindow
from shared.bus import replies, streams
from shared.config import Settings

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
# Three weeks of daily history warm-up plus four sessions of 1-minute bars.
SHORT_WINDOW = ReplayWindow(daily_from="2020-06-01", intraday_from="2021-03-01", end="2021-03-04")


def ingest(
    settings: Settings, window: ReplayWindow = SHORT_WINDOW, data_dir: Path = DATA_DIR
) -> dict[str, int]:
    return IngestService(settings, FileReplaySource(data_dir, window)).run()


def run_features(settings: Settings, consumer: str = "features-1") -> FeaturesWorker:
    worker = FeaturesWorker(settings, consumer)
    worker.run(max_idle_reads=2)
    return worker


def stream_payloads(client: redis.Redis, stream: str) -> list[bytes]:
    return [fields[b"d"] for _, fields in replies.xrange(client, stream)]


def feature_payloads(client: redis.Redis) -> list[bytes]:
    return stream_payloads(client, streams.FEATURES)
