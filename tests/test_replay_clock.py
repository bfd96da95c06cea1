"""The replay clock: ingest says what the feed is doing (aegis:run), the gateway judges
freshness on the replay's own time, and the document carries that clock."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import orjson
import pandas as pd
import pytest
import redis
from structlog.testing import capture_logs

from services.ingest.main import IngestService
from services.ingest.sources.base import RejectedInput, SourceEvent
from shared.bus import replies, streams
from shared.config import Settings
from shared.contract.schemas import Bar
from shared.market import calendar
from shared.market.clock import RunClock, RunInfo, clock_section
from tests.block_factory import all_blocks
from tests.gateway_harness import RunningGateway, publish
from tests.waiting import wait_for

MINUTE = calendar.daily_open_time(calendar.to_date("2022-06-01")) + 45 * 60  # 10:00 IST
WALL = 1_900_000_000_000


def replay(stream_time_s: int | None, *, paced: bool = True, finished: bool = False) -> RunInfo:
    return RunInfo("replay", "file", 60.0, paced, stream_time_s, WALL, finished)


# -- the clock itself --------------------------------------------------------------------
def test_without_a_replay_the_clock_is_wall_time() -> None:
    wall = [WALL]
    clock = RunClock(lambda: wall[0])
    assert clock.now_ms() == WALL and clock.rate() == 1.0
    clock.set_run(RunInfo("live", "yfinance", 0.0, False, MINUTE, WALL - 5000, False))
    wall[0] += 7000
    assert clock.now_ms() == WALL + 7000
    assert clock.section()["mode"] == "live" and clock.section()["replay_date"] is None


def test_a_paced_replay_moves_at_its_speed_from_the_newest_bar() -> None:
    wall = [WALL]
    clock = RunClock(lambda: wall[0])
    clock.set_run(replay(MINUTE))
    assert clock.now_ms() == MINUTE * 1000
    wall[0] += 2500  # 2.5 wall seconds at 60x: 150 replayed seconds
    assert clock.now_ms() == (MINUTE + 150) * 1000
    section = clock.section()
    assert section["mode"] == "replay" and section["speed"] == 60.0 and section["rate"] == 60.0
    assert section["replay_date"] == "2022-06-01"
    assert section["now"] == "2022-06-01T04:32:30.000Z"  # 10:02:30 IST


@pytest.mark.parametrize("run", [replay(MINUTE, paced=False), replay(MINUTE, finished=True)])
def test_a_fast_forwarding_or_finished_replay_stands_at_its_newest_bar(run: RunInfo) -> None:
    wall = [WALL + 60_000]
    clock = RunClock(lambda: wall[0])
    clock.set_run(run)
    assert clock.now_ms() == MINUTE * 1000 and clock.rate() == 0.0
    assert clock_section(clock)["finished"] is run.finished


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ({"mode": "paused", "stream_at_ms": 1}, "mode 'paused'"),
        ({"mode": "replay"}, "stream_at_ms"),
        ({"mode": "replay", "stream_at_ms": None}, "mistypes"),
    ],
)
def test_a_malformed_run_record_is_refused_with_its_reason(raw: dict, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        RunInfo.from_json(raw)


# -- ingest publishes it -----------------------------------------------------------------
class Bars:
    name = "file"
    speed = 60.0

    def __init__(self, bars: list[Bar], stop_after: threading.Event | None = None) -> None:
        self.bars = bars
        self.stop_after = stop_after

    def events(self) -> Iterator[SourceEvent | RejectedInput]:
        yield from self.bars
        if self.stop_after is not None:  # a Ctrl-C while the source still has data
            self.stop_after.wait(10)

    def close(self) -> None:
        if self.stop_after is not None:
            self.stop_after.set()

    @property
    def status(self) -> dict[str, object]:
        return {}


def minute_bar(i: int) -> Bar:
    return Bar(
        symbol="NIFTY",
        interval="1m",
        open_time=MINUTE + 60 * i,
        open=16_500.0,
        high=16_510.0,
        low=16_490.0,
        close=16_505.0,
        source="test",
    )


def daily_bar(day: str) -> Bar:
    d = calendar.to_date(day)
    t = calendar.daily_open_time(d)
    return Bar(
        symbol="VIX", interval="1d", open_time=t, open=20, high=21, low=19, close=20.5, source="t"
    )


def run_record(client: redis.Redis) -> RunInfo:
    raw = replies.get_bytes(client, streams.RUN)
    assert raw is not None, "no run record"
    return RunInfo.from_json(orjson.loads(raw))


def test_ingest_publishes_the_replay_clock_and_a_finished_replay_says_so(
    settings: Settings, redis_client: redis.Redis
) -> None:
    with capture_logs() as logs:
        IngestService(settings, Bars([minute_bar(i) for i in range(3)]), redis_client).run()
    run = run_record(redis_client)
    assert run.mode == "replay" and run.speed == 60.0 and run.finished
    assert run.stream_time_s == MINUTE + 3 * 60  # the end of the newest minute
    [done] = [x for x in logs if x["event"] == "source_exhausted"]
    assert done["replayed_until"] == "2022-06-01 10:03 IST"
    assert [x for x in logs if x["event"] == "replay_progress"]


def test_a_stopped_replay_is_not_reported_as_exhausted(
    settings: Settings, redis_client: redis.Redis
) -> None:
    stop = threading.Event()
    service = IngestService(settings, Bars([minute_bar(0)], stop_after=stop), redis_client)
    with capture_logs() as logs:
        worker = threading.Thread(target=service.run)
        worker.start()
        wait_for(lambda: redis_client.get(streams.RUN) is not None, 10, "no run record")
        service.stop()
        worker.join(10)
    events = [x["event"] for x in logs]
    assert "source_stopped" in events and "source_exhausted" not in events
    assert not run_record(redis_client).finished


def test_calendar_gaps_are_one_summary_line(settings: Settings, redis_client: redis.Redis) -> None:
    days = ["2022-05-02", "2022-05-10", "2022-05-20"]  # two gaps of several sessions
    with capture_logs() as logs:
        IngestService(settings, Bars([daily_bar(d) for d in days]), redis_client).run()
    warnings = [x for x in logs if x["log_level"] == "warning"]
    assert [x["event"] for x in warnings] == ["calendar_gaps"]
    assert warnings[0]["gaps"] == 2 and warnings[0]["sessions"] >= 10


# -- the gateway judges freshness on it ----------------------------------------------------
def test_replayed_blocks_are_fresh_on_the_replay_clock_and_stale_once_the_feed_stops(
    settings: Settings, redis_client: redis.Redis
) -> None:
    wall = settings.model_copy(update={"clock": "wall"})
    now_ms = int(__import__("time").time() * 1000)
    record = replay(MINUTE + 60, paced=True)
    record = RunInfo(**{**record.to_json(), "stream_at_ms": now_ms})
    redis_client.set(streams.RUN, orjson.dumps(record.to_json()))
    publish(wall, *all_blocks(as_of=MINUTE, freshness_limit_s=300))
    with RunningGateway(wall, tick_s=0.1, health_poll_s=0.1) as gw:

        def doc() -> dict:
            return httpx.get(gw.url + "/api/v1/document").json()

        wait_for(lambda: doc()["market"] is not None, 10, "no market block")
        wait_for(lambda: doc()["clock"]["mode"] == "replay", 10, "clock not in replay")
        first = doc()
        assert first["clock"]["replay_date"] == "2022-06-01"
        assert first["clock"]["speed"] == 60.0
        assert not any(first[e]["stale"] for e in ("market", "direction", "seller", "buyer"))

        # the feed stopped reporting 10 wall seconds ago: 600 replayed seconds have passed
        stopped = RunInfo(**{**record.to_json(), "stream_at_ms": now_ms - 10_000})
        redis_client.set(streams.RUN, orjson.dumps(stopped.to_json()))
        wait_for(lambda: doc()["market"]["stale"], 10, "a stopped replay never went stale")
        assert doc()["clock"]["now"] > "2022-06-01T04:40"


# -- console -----------------------------------------------------------------------------
class Tty:
    def isatty(self) -> bool:
        return True


class Pipe:
    def isatty(self) -> bool:
        return False


def test_logs_are_readable_on_a_terminal_and_json_otherwise_or_when_asked() -> None:
    from shared.logs import wants_json

    assert wants_json(None, Tty()) is False  # type: ignore[arg-type]
    assert wants_json(None, Pipe()) is True  # type: ignore[arg-type]
    assert wants_json(True, Tty()) is True  # type: ignore[arg-type]
    assert wants_json(False, Pipe()) is False  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("moment", "market_open", "next_open"),
    [
        ("2026-01-23T10:00:00", True, None),  # Friday, in session
        ("2026-01-23T08:00:00", False, "2026-01-23T03:45:00.000Z"),  # before the open
        ("2026-01-23T15:30:00", False, "2026-01-27T03:45:00.000Z"),  # the close; Mon a holiday
        ("2026-01-24T12:00:00", False, "2026-01-27T03:45:00.000Z"),  # Saturday
    ],
)
def test_the_clock_says_whether_the_market_is_open_and_when_it_opens(
    moment: str, market_open: bool, next_open: str | None
) -> None:
    wall_ms = int(pd.Timestamp(moment, tz=calendar.IST).timestamp() * 1000)
    section = RunClock(lambda: wall_ms).section()
    assert (section["market_open"], section["next_open"]) == (market_open, next_open)
