"""Record real Redis streams to a file and replay them into a flushed Redis."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from itertools import islice
from pathlib import Path

import pandas as pd
import pytest
import redis

from services.ingest.sources.base import RejectedInput
from services.ingest.sources.chain_file import ChainFileSource
from services.ingest.sources.stream_file import (
    StreamFileSource,
    read_header,
    record_streams,
)
from shared.bus import replies, streams
from shared.bus.publish import Bus
from shared.config import PROJECT_ROOT, Settings
from shared.contract.schemas import SCHEMA_VERSION, Bar, Message, OptionChain
from shared.market.calendar import daily_open_time
from tests.bus_reads import add
from tests.conftest import DATA_DIR
from tests.narrowing import every
from tests.test_chain_file import CHAIN_FILE

RECORDED = [streams.BARS, streams.CHAINS]


def _daily_bars(n: int) -> list[Bar]:
    frame = pd.read_csv(DATA_DIR / "nifty50_daily.csv", parse_dates=["date"]).tail(n)
    return [
        Bar(
            symbol="NIFTY",
            interval="1d",
            open_time=daily_open_time(r.date.date()),
            open=r.open,
            high=r.high,
            low=r.low,
            close=r.close,
            volume=float(r.volume),
            source="test",
        )
        for r in frame.itertuples()
    ]


def _publish(bus: Bus, events: Sequence[Message]) -> None:
    for event in events:
        if isinstance(event, Bar):
            assert bus.publish_bars([event])[0].outcome == "published"
        else:
            bus.publish(event)


def _fill(bus: Bus) -> None:
    """Daily bars, a forming bar and its revision, interleaved with real chain snapshots."""
    bars = _daily_bars(5)
    chains = every(islice(ChainFileSource(CHAIN_FILE).events(), 3), OptionChain)
    forming = bars[-1].model_copy(update={"final": False, "close": bars[-1].close - 10})
    _publish(bus, [*bars[:3], chains[0], bars[3], forming, chains[1], bars[4], chains[2]])


def _entries(client: redis.Redis) -> dict[str, list[dict[bytes, bytes]]]:
    """Each recorded stream's entries in order, without their ids (ids are new on replay,
    and entries of different streams written in the same millisecond have no order)."""
    return {s: [f for _, f in replies.xrange(client, s)] for s in RECORDED}


def test_record_then_replay_into_fresh_redis_is_identical(
    redis_client: redis.Redis, settings: Settings, tmp_path: Path
) -> None:
    bus = Bus(redis_client, settings)
    _fill(bus)
    add(redis_client, streams.FEATURES, {"t": "x"})  # not recorded
    original = _entries(redis_client)
    assert [len(v) for v in original.values()] == [6, 3]

    path = tmp_path / "rec.msgpack"
    assert record_streams(redis_client, RECORDED, path) == 9
    header = read_header(path)
    assert header["schema_version"] == SCHEMA_VERSION and header["streams"] == RECORDED

    redis_client.flushall()
    source = StreamFileSource(path, speed=0)
    events = every(source.events(), Message)
    assert {type(e) for e in events} == {Bar, OptionChain}
    _publish(bus, events)
    assert _entries(redis_client) == original


def test_replay_rejects_garbage_and_skips_other_streams(
    redis_client: redis.Redis, settings: Settings, tmp_path: Path
) -> None:
    bus = Bus(redis_client, settings)
    (bar,) = _daily_bars(1)
    bus.publish_bars([bar])
    add(redis_client, streams.BARS, {"t": "bar", "v": "1", "d": b"\xc1garbage"})
    add(redis_client, streams.BARS, {"t": "bar", "v": "999", "d": b"\x80"})
    add(redis_client, streams.FEATURES, {"t": "feature_snapshot", "v": "1", "d": b"\x80"})
    path = tmp_path / "rec.msgpack"
    assert record_streams(redis_client, [streams.BARS, streams.FEATURES], path) == 4

    events = list(StreamFileSource(path).events())
    assert events[0] == bar
    rejected = every(events[1:], RejectedInput)
    assert len(rejected) == 2
    assert "not msgpack" in rejected[0].reason
    assert "schema version '999'" in rejected[1].reason


def test_not_a_recording_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.msgpack"
    path.write_bytes(b"\x81\xa1a\x01")
    with pytest.raises(ValueError, match="not an aegis-streams recording"):
        StreamFileSource(path)


def test_record_cli(redis_client: redis.Redis, settings: Settings, tmp_path: Path) -> None:
    _fill(Bus(redis_client, settings))
    out = tmp_path / "cli.msgpack"
    env = {**os.environ, "AEGIS_REDIS_URL": settings.redis_url, "AEGIS_LOG_JSON": "true"}
    subprocess.run(
        [sys.executable, "-m", "services.ingest.record", "--streams", *RECORDED, "--out", str(out)],
        cwd=PROJECT_ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    replayed = list(StreamFileSource(out).events())
    assert len(replayed) == 9
    assert sum(isinstance(e, OptionChain) for e in replayed) == 3
