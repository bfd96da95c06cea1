"""After a replay, ingest keeps what it published (AEGIS_REPLAY_WATCH): Redis that loses the
tail of the bars (an AOF cut, a failover to a lagging replica) gets it again from ingest's
buffer, and Redis that loses everything (restarted empty, flushed) gets the replay again,
though the replay had ended. On a real redis-server, the real ingest entry point."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import redis
from structlog.testing import capture_logs

from services.ingest.__main__ import Runner
from shared.bus import replies, streams
from shared.bus.worker import read_health
from shared.config import Settings
from shared.contract.codec import decode
from shared.contract.schemas import Bar
from shared.market import calendar
from tests.pipeline import SHORT_WINDOW, stream_payloads
from tests.waiting import wait_for

LOST_TAIL = 100  # minutes an AOF cut takes away; also ingest's buffer here


def bars_on_stream(client: redis.Redis) -> list[bytes]:
    return stream_payloads(client, streams.BARS)


def replay_ended(client: redis.Redis) -> bool:
    reports = read_health(client)
    return any(
        (r["service"], r["consumer"]) == ("ingest", "file") and r["finished"] for r in reports
    )


@pytest.fixture()
def watching(settings: Settings) -> Iterator[Runner]:
    """``python -m services.ingest``'s runner on the short replay, unpaced, in a thread."""
    runner = Runner(
        settings.model_copy(
            update={
                "replay_daily_from": SHORT_WINDOW.daily_from,
                "replay_intraday_from": SHORT_WINDOW.intraday_from,
                "replay_end": SHORT_WINDOW.end,
                "replay_speed": 0.0,
                "replay_watch": True,
                # smaller than a series: only the replay again can restore everything
                "republish_buffer": LOST_TAIL,
            }
        )
    )
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    try:
        yield runner
    finally:
        runner.stop()
        thread.join(timeout=10)
        assert not thread.is_alive(), "ingest did not stop"


@pytest.mark.slow
def test_a_finished_replay_is_kept_whole_when_redis_loses_bars(
    watching: Runner, redis_client: redis.Redis
) -> None:
    wait_for(lambda: replay_ended(redis_client), 60, "the replay to end")
    clean = bars_on_stream(redis_client)
    assert len(clean) > 1500

    with capture_logs() as logs:
        redis_client.flushall()  # everything: more than the buffer, so the replay again
        wait_for(lambda: bars_on_stream(redis_client) == clean, 60, "the replay published again")
    assert any(e["event"] == "replaying_after_data_loss" for e in logs)

    # the tail only, as a cut AOF leaves it: the stream and series state of 100 bars ago
    entries = [(i, decode(f)) for i, f in replies.xrange(redis_client, streams.BARS)]
    minutes = [(i, bar) for i, bar in entries if isinstance(bar, Bar) and bar.interval == "1m"]
    kept = minutes[-LOST_TAIL - 1]
    lost_ids, lost = zip(*minutes[-LOST_TAIL:], strict=True)
    redis_client.xdel(streams.BARS, *lost_ids)
    key = streams.series_state("NIFTY", "1m")
    seq = int(redis_client.hget(key, "seq") or 0)
    redis_client.hset(key, mapping={"seq": seq - LOST_TAIL, "open_time": kept[1].open_time})
    for bar in lost:
        day = calendar.ist_date(bar.open_time).isoformat()
        redis_client.hdel(streams.series_digests("NIFTY", "1m", day), bar.open_time)
    wait_for(
        lambda: (
            [decode(f) for _, f in replies.xrange(redis_client, streams.BARS)][-LOST_TAIL:]
            == list(lost)
        ),
        30,
        "the lost bars published again from ingest's buffer",
    )
    assert redis_client.xlen(streams.BARS) == len(clean)
