"""The scheduled retrain, seen firing on a real Redis: rq's CronScheduler (a short interval)
enqueues the training job, a real training worker process publishes new model versions, and
an engine that keeps running hot-reloads them with no restart and no lost message."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest
import redis
from rq.cron import get_cron_job_ids
from rq.job import Job
from rq.serializers import JSONSerializer

from services.seller.main import SellerWorker
from services.trainer.jobs import redis_for_rq
from services.trainer.worker import CRON_JOB_NAME, cron_schedule
from shared.bus import replies, streams
from shared.bus.publish import Bus
from shared.config import Settings
from shared.contract.codec import decode
from shared.contract.schemas import ModelPublished
from shared.market import calendar
from shared.models import registry
from tests.engines_support import intraday_snapshot
from tests.models_support import WINDOW, trained_registry
from tests.processes import kill_tree, trainer_worker
from tests.test_engines import blocks, running
from tests.waiting import wait_for

pytestmark = pytest.mark.slow

NEW_END = "2021-07-30"  # a week's later data than the registry's versions (end WINDOW[1])
INTERVAL_S = 5
PUBLISH_EVERY_S = 0.2


def test_schedule_is_a_setting() -> None:
    assert cron_schedule(Settings()) == {"cron": "30 0 * * 6"}
    assert cron_schedule(Settings(training_interval_s=7)) == {"interval": 7}


def _snapshots() -> Iterator:
    """Intraday snapshots of the sessions after the registry's window, as_of ascending."""
    days = [d for d in calendar.sessions() if WINDOW[1] < d.isoformat() <= "2021-12-31"]
    for day in days:
        for minutes in range(1, 300, 7):
            yield intraday_snapshot(day.isoformat(), minutes)


@pytest.fixture()
def training_worker(settings: Settings) -> Iterator[subprocess.Popen]:
    """``python -m services.trainer worker`` (rq worker + its CronScheduler process)."""
    env = {
        **os.environ,
        "AEGIS_REDIS_URL": settings.redis_url,
        "AEGIS_EMBEDDED_REDIS": "false",
        "AEGIS_MODEL_DIR": str(settings.model_dir),
        "AEGIS_TRAINING_QUEUE": settings.training_queue,
        "AEGIS_TRAIN_END": NEW_END,
        "AEGIS_TRAINING_INTERVAL_S": str(INTERVAL_S),
        "AEGIS_TRAINING_SCHEDULE_PROFILE": "fast",
        "AEGIS_LOG_LEVEL": "WARNING",
    }
    proc = trainer_worker(env)
    try:
        yield proc
    finally:
        kill_tree(proc)  # worker, scheduler and work horse


def test_cron_fires_publishes_and_engine_hot_reloads_losing_nothing(
    settings: Settings, redis_client: redis.Redis, training_worker: subprocess.Popen
) -> None:
    shutil.copytree(trained_registry(), settings.model_dir)
    names = SellerWorker.model_names
    old = {n: registry.current_version(settings.model_dir, n) for n in names}
    bus, published, stop = Bus(redis_client, settings), [], threading.Event()

    def publish() -> None:  # a steady feed of snapshots across the reload
        for snap in _snapshots():
            if stop.is_set():
                return
            bus.publish(snap)
            published.append(snap.as_of)
            time.sleep(PUBLISH_EVERY_S)

    with running(SellerWorker, settings) as engine:
        started_at = engine.stats["started_at"]
        wait_for(lambda: engine.models.versions() == tuple(sorted(old.items())), 30, "v1 loaded")
        feeder = threading.Thread(target=publish, daemon=True)
        feeder.start()

        def reloaded() -> bool:
            assert training_worker.poll() is None, "the training worker exited"
            return all(engine.models.loaded[n].ref.version.startswith("20210730-") for n in names)

        wait_for(reloaded, 400, "the engine to hot-reload the scheduled job's versions")
        time.sleep(4 * PUBLISH_EVERY_S)  # a few snapshots served by the new versions
        stop.set()
        feeder.join(timeout=10)
        out = wait_for(
            lambda: (lambda b: b if len(b) >= len(published) else None)(
                blocks(redis_client, "seller")
            ),
            60,
            f"{len(published)} seller blocks",
        )
        # one engine process and run throughout: no restart, every snapshot handled once
        assert engine.stats["started_at"] == started_at
        assert engine.stats["processed"] == len(published) and engine.stats["errors"] == 0

    # the schedule fired (rq recorded the ids it enqueued), more than once at this interval
    connection = redis_for_rq(settings)
    fired = wait_for(
        lambda: (lambda ids: ids if len(ids) >= 2 else None)(
            get_cron_job_ids(CRON_JOB_NAME, connection)
        ),
        30,
        "a second scheduled enqueue",
    )
    jobs = Job.fetch_many(fired, connection, serializer=JSONSerializer)
    finished = [j for j in jobs if j and j.is_finished]
    assert finished, "no scheduled job finished"
    results = finished[-1].return_value()
    assert results is not None
    new = {r["name"]: r["version"] for r in results}
    for n in names:
        assert new[n] != old[n] and new[n].startswith("20210730-")
        assert registry.current_version(settings.model_dir, n) == new[n]
    announced = {
        (e.name, e.version)
        for e in (decode(f) for _, f in replies.xrange(redis_client, streams.MODEL_EVENTS))
        if isinstance(e, ModelPublished)
    }
    assert {(n, new[n]) for n in names} <= announced

    # no message lost or doubled; versions switch once, old then new, in one running engine
    assert [b.as_of for b in out] == published
    seller_version = [dict((m.name, m.version) for m in b.models).get("seller") for b in out]
    switch = seller_version.index(new["seller"])
    assert switch > 0 and set(seller_version[:switch]) == {old["seller"]}
    assert set(seller_version[switch:]) == {new["seller"]}
