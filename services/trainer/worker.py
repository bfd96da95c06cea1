"""The training worker: an rq worker on the training queue plus rq's CronScheduler, which
enqueues a retrain on ``settings.training_cron_utc`` (default every Saturday 06:00 IST,
after the week's last session) or every ``settings.training_interval_s`` seconds."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Sequence
from types import FrameType
from typing import Any

from redis import Redis
from rq import Queue, Worker
from rq import cron as rq_cron
from rq.cron import CronJob, CronScheduler
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.worker import BaseWorker

from services.trainer.jobs import (
    JOB_TIMEOUT_S,
    AllowedJob,
    redis_for_rq,
    settings_payload,
    train_job,
    training_queue,
)
from shared.config import Settings
from shared.logs import get_logger

log = get_logger("trainer")
CRON_JOB_NAME = "weekly-retrain"  # rq keeps the ids it enqueued under this name


def cron_schedule(settings: Settings) -> dict[str, Any]:
    """rq's ``register`` keyword for the schedule: an interval when set, else the cron."""
    if settings.training_interval_s is not None:
        return {"interval": settings.training_interval_s}
    return {"cron": settings.training_cron_utc}


def run_cron(settings: Settings) -> None:
    """The scheduler process (spawned, so its time zone is its own): rq matches cron fields
    against local time, so the process runs in UTC to make ``training_cron_utc`` UTC."""
    os.environ["TZ"] = "UTC"
    time.tzset()
    scheduler = CronScheduler(connection=redis_for_rq(settings), name="aegis-weekly-training")
    register_weekly(scheduler, settings)
    scheduler.start()


class JsonCronJob(CronJob):
    """rq's CronJob, enqueuing JSON jobs: its own ``enqueue`` (rq 3.0, otherwise the same
    steps) uses the default serializer, pickle, which the training worker does not read."""

    def enqueue(self, connection: Redis) -> Job:
        if self.func is None:
            raise ValueError(f"cron job {self.name} has no function to enqueue")
        queue = Queue(self.queue_name, connection=connection, serializer=JSONSerializer)
        with connection.pipeline() as pipeline:
            job = queue.enqueue(
                self.func, args=self.args, kwargs=self.kwargs, **self.job_options, pipeline=pipeline
            )
            assert job.enqueued_at is not None
            at = job.enqueued_at.timestamp()
            pipeline.zadd(self.job_history_key, {job.id: at})
            pipeline.zremrangebyrank(
                self.job_history_key, 0, -(rq_cron.DEFAULT_CRON_JOB_HISTORY_LIMIT + 1)
            )
            pipeline.expire(self.job_history_key, rq_cron.DEFAULT_CRON_JOB_HISTORY_TTL)
            rq_cron.cron_job_registry.add(self.name, pipeline, enqueue_timestamp=at)
            pipeline.execute()
        return job


def register_weekly(scheduler: CronScheduler, settings: Settings) -> CronJob:
    """The scheduled retrain. Its kwargs are stored in the scheduler's hash and become the
    job's arguments and description: ``settings_payload`` holds no secret."""
    job = scheduler.register(
        train_job,
        queue_name=settings.training_queue,
        kwargs={"settings": settings_payload(settings)}
        | {"profile": settings.training_schedule_profile},
        job_timeout=JOB_TIMEOUT_S,
        name=CRON_JOB_NAME,
        **cron_schedule(settings),
    )
    job.__class__ = JsonCronJob  # the same job, enqueued as JSON
    return job


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def remember_stop_signals() -> list[int]:
    """Record SIGTERM/SIGINT in the returned list instead of acting on them, until the rq
    worker installs its own handlers (which then honour what was recorded)."""
    received: list[int] = []

    def remember(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    for sig in STOP_SIGNALS:
        signal.signal(sig, remember)
    return received


class TrainingWorker(Worker):
    """rq's Worker, honouring a stop that arrived before its own signal handlers: rq registers
    the worker (visible to every client) before it installs them, and a SIGTERM in that gap
    would otherwise be lost and the container stopped only by SIGKILL."""

    early_stops: Sequence[int] = ()

    def _install_signal_handlers(self) -> None:
        super()._install_signal_handlers()
        if self.early_stops:
            self.log.info("stop signal %s arrived while starting; stopping", self.early_stops[0])
            self._stop_requested = True  # the work loop's first check ends it cleanly


def training_worker(
    settings: Settings, connection: Redis, worker_class: type[BaseWorker] = TrainingWorker
) -> BaseWorker:
    """An rq worker on the training queue: JSON jobs, only the allowed ones performed."""
    return worker_class(
        [training_queue(settings, connection)],
        connection=connection,
        serializer=JSONSerializer,
        job_class=AllowedJob,
    )


def run_worker(
    settings: Settings,
    burst: bool = False,
    schedule: bool = True,
    early_stops: list[int] | None = None,
) -> None:
    """The worker (and the cron process unless ``burst``) until a stop signal. ``early_stops``
    are the signals a caller recorded before this (``remember_stop_signals``)."""
    early_stops = remember_stop_signals() if early_stops is None else early_stops
    if early_stops:
        return
    cron = None
    if schedule and not burst:
        cron = multiprocessing.get_context("spawn").Process(
            target=run_cron, args=(settings,), name="training-cron", daemon=True
        )
        cron.start()
        log.info("cron_started", **cron_schedule(settings), queue=settings.training_queue)
    try:
        worker = training_worker(settings, redis_for_rq(settings))
        if isinstance(worker, TrainingWorker):
            worker.early_stops = early_stops
        worker.work(burst=burst, with_scheduler=False)
    finally:
        if cron is not None:
            cron.terminate()
            cron.join()
