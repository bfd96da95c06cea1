"""Training as rq jobs on the real Redis: a real worker runs it and announces the versions;
a worker killed mid-job leaves every CURRENT pointer as it was."""

from __future__ import annotations

import logging
import os
import shutil
import signal
from pathlib import Path

import pytest
import redis
from rq import Callback, Queue, SimpleWorker
from rq.job import Job
from rq.registry import FailedJobRegistry
from rq.serializers import JSONSerializer
from rq.worker import BaseWorker

from services.trainer.jobs import enqueue_training, redis_for_rq
from services.trainer.worker import STOP_SIGNALS, TrainingWorker, training_worker
from shared.bus import streams
from shared.config import Settings
from shared.contract.schemas import ModelPublished
from shared.models import registry
from shared.models.loading import MODEL_NAMES
from tests.bus_reads import messages
from tests.models_support import trained_registry
from tests.processes import kill_tree, trainer_worker
from tests.waiting import wait_for


@pytest.mark.slow
def test_job_trains_publishes_and_announces(settings: Settings, redis_client: redis.Redis) -> None:
    job = enqueue_training(settings, end="2021-06-30", profile="fast")
    training_worker_here(settings).work(burst=True)
    job.refresh()
    assert job.is_finished, job.latest_result()
    results = job.return_value()
    assert results is not None
    published = {r["name"]: r["version"] for r in results}
    assert set(published) == set(MODEL_NAMES)
    for name, version in published.items():
        assert registry.current_version(settings.model_dir, name) == version
        assert version.startswith("20210630-")
    announced = messages(redis_client, streams.MODEL_EVENTS, ModelPublished)
    assert {(m.name, m.version) for m in announced} == set(published.items())
    assert job.meta["step"] == "done"


def training_worker_here(settings: Settings) -> BaseWorker:
    """The training worker, in this process."""
    return training_worker(settings, redis_for_rq(settings), SimpleWorker)


@pytest.mark.timeout(60)
def test_a_stop_before_the_handlers_ends_the_worker(
    settings: Settings, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """rq registers a worker before it installs its signal handlers: a SIGTERM recorded in
    that gap stops the worker at its first loop check instead of being lost (the container
    would then wait for its SIGKILL). Without it, this worker idles on the queue until
    ``max_idle_time`` and says so."""
    worker = training_worker(settings, redis_for_rq(settings))
    assert isinstance(worker, TrainingWorker)
    worker.early_stops = [signal.SIGTERM]
    handlers = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    try:
        with caplog.at_level(logging.INFO, logger="rq.worker"):
            worker.work(burst=False, max_idle_time=20)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    assert "stopping on request" in caplog.text
    assert "quitting" not in caplog.text
    assert redis_client.scard("rq:workers") == 0, "the worker unregistered itself"


def touch_first_argument(job: Job, *_: object) -> None:
    """A would-be failure callback: it leaves a file where the job's first argument says."""
    Path(job.args[0]).touch()


def test_a_job_that_is_not_training_fails_unrun(settings: Settings, tmp_path: Path) -> None:
    """The trainer's credential enqueues jobs; it must not run code: a JSON job naming another
    function fails without running it, and a pickled job is never unpickled (rq's default
    serializer runs code as it loads) but fails to load."""
    connection = redis_for_rq(settings)
    witness = tmp_path / "ran"
    queue = Queue(settings.training_queue, connection=connection, serializer=JSONSerializer)
    other = queue.enqueue("os.mkdir", str(witness))
    # a callback rq would import and call even for the job that failed
    called = tmp_path / "called"
    callback = queue.enqueue("os.getpid", str(called), on_failure=Callback(touch_first_argument))
    pickled = Queue(settings.training_queue, connection=connection).enqueue(os.mkdir, str(witness))
    training_worker_here(settings).work(burst=True)
    assert not witness.exists() and not called.exists()
    other = Job.fetch(other.id, connection=connection, serializer=JSONSerializer)
    result = other.latest_result()
    assert other.is_failed and result is not None
    assert "'os.mkdir' is not a training job" in str(result.exc_string)
    assert set(FailedJobRegistry(queue=queue).get_job_ids()) == {other.id, callback.id, pickled.id}


@pytest.mark.slow
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
