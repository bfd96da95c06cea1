"""A restarted replay runs fast through what an earlier run published, then paces again."""

from __future__ import annotations

import pytest
import redis

from services.ingest.__main__ import published_until
from services.ingest.sources.file_replay import FileReplaySource, ReplayWindow
from services.ingest.sources.pacing import event_time
from shared.bus.publish import Bus
from shared.config import Settings
from shared.contract.schemas import Bar
from tests.conftest import DATA_DIR
from tests.waiting import RecordingStop

pytestmark = pytest.mark.slow

WINDOW = ReplayWindow(daily_from="2022-12-20", intraday_from="2022-12-27", end="2022-12-27")


def bars() -> list[Bar]:
    return [e for e in FileReplaySource(DATA_DIR, WINDOW).events() if isinstance(e, Bar)]


def test_resume_point_is_the_newest_published_bar(
    settings: Settings, redis_client: redis.Redis
) -> None:
    assert published_until(settings) is None
    first_run = bars()[:200]
    Bus(redis_client, settings).publish_bars(first_run)
    assert published_until(settings) == max(b.open_time for b in first_run)


def test_pacing_resumes_after_the_published_bars() -> None:
    everything = bars()
    resume = everything[200].open_time
    stop = RecordingStop()
    replay = FileReplaySource(
        DATA_DIR, WINDOW, speed=60, paced_from="2022-12-27", stop=stop, resume_after_s=resume
    )
    assert [e for e in replay.events() if isinstance(e, Bar)] == everything
    paced = [b for b in everything if event_time(b) > resume]
    # one wait per new event time after the resume point (bars at one time share it)
    assert paced and len(stop.waits) == len({event_time(b) for b in paced})
    assert all(0 < w <= 1.0 for w in stop.waits)
