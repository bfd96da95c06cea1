"""Training as rq jobs on the real Redis: a real worker runs it and announces the versions;
a worker killed mid-job leaves every CURRENT pointer as it was."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import redis
from rq import Queue, SimpleWorker

from services.trainer.jobs import enqueue_training, redis_for_rq
from shared import streams
from shared.codec import decode
from shared.config import Settings
from shared.models import registry
from shared.models.loading import MODEL_NAMES
from tests.models_support import trained_registry
from tests.processes import kill_tree, trainer_worker
from tests.waiting import wait_for


def test_job_trains_publishes_and_announces(settings: Settings, redis_client: redis.Redis) -> None:
    job = enqueue_training(settings, end="2021-06-30", profile="fast")
    connection = redis_for_rq(settings)
    SimpleWorker(
        [Queue(settings.training_queue, connection=connection)], connection=connection
    ).work(burst=True)
    job.refresh()
    assert job.is_finished, job.latest_result()
    published = {r["name"]: r["version"] for r in job.return_value()}
    assert set(published) == set(MODEL_NAMES)
    for name, version in published.items():
        assert registry.current_version(settings.model_dir, name) == version
        assert version.startswith("20210630-")
    announced = [decode(fields) for _, fields in redis_client.xrange(streams.MODEL_EVENTS)]
    assert {(m.name, m.version) for m in announced} == set(published.items())
    assert job.meta["step"] == "done"


def test_killed_job_leaves_current_untouched(settings: Settings, redis_client: redis.Redis) -> None:
    shutil.copytree(trained_registry(), settings.model_dir)
    before = {n: registry.current_version(settings.model_dir, n) for n in MODEL_NAMES}
    listing = sorted(p.relative_to(settings.model_dir) for p in Path(settings.model_dir).rglob("*"))
    job = enqueue_training(settings, profile="full")
    env = {
        **os.environ,
        "AEGIS_REDIS_URL": settings.redis_url,
        "AEGIS_EMBEDDED_REDIS": "false",
        "AEGIS_TRAINING_QUEUE": settings.training_queue,
    }
    worker = trainer_worker(env, "--burst")
    try:

        def training_started() -> bool:
            job.refresh()
            return str(job.meta.get("step", "")).startswith("training")

        wait_for(training_started, 60, "the job to start training")
    finally:
        kill_tree(worker)  # the worker, its work horse (own group)
    assert {n: registry.current_version(settings.model_dir, n) for n in MODEL_NAMES} == before
    after = sorted(p.relative_to(settings.model_dir) for p in Path(settings.model_dir).rglob("*"))
    assert after == listing
    assert redis_client.xlen(streams.MODEL_EVENTS) == 0
