"""Training as an rq job on ``settings.training_queue``, reporting progress in job.meta.

No secret travels with a job: its arguments (stored in the job hash, shown in its description
and the worker's log) carry the enqueuer's settings without passwords or the API token; the
job connects to Redis with the worker's own credentials, those of the connection it was
delivered on.

A job is data, not code: jobs are JSON (rq's JSONSerializer; rq's default, pickle, runs code
as it loads), and the worker performs only the functions of ``ALLOWED_JOBS``; anything else
fails unrun, with the reason. So the trainer's Redis credential cannot run arbitrary code."""

from __future__ import annotations

from typing import Any

import redis
from rq import Queue, get_current_job
from rq.job import Job
from rq.serializers import JSONSerializer

from services.trainer.pipeline import run_training
from services.trainer.profiles import PROFILES
from shared.bus.publish import connect
from shared.config import Settings

JOB_TIMEOUT_S = 1800


def redis_for_rq(settings: Settings) -> redis.Redis:
    """rq blocks on its own timeouts; it needs a client without a socket timeout (through
    the sentinels when they are set)."""
    return connect(settings, socket_timeout=False)


def train_job(
    settings: dict, end: str | None = None, profile: str = "full"
) -> list[dict[str, str]]:
    """The job body: train every model, publish, return what was published. ``settings``
    is the enqueuer's Settings as JSON without secrets, so the worker trains into the same
    registry."""
    job = get_current_job()

    def progress(step: str, done: int, total: int) -> None:
        if job is not None:
            job.meta.update(step=step, done=done, total=total)
            job.save_meta()

    results = run_training(
        job_settings(settings, job.connection if job else None),
        end=end,
        profile=PROFILES[profile],
        progress=progress,
    )
    return [{"name": r.name, "version": r.version} for r in results]


def settings_payload(settings: Settings) -> dict:
    """The settings a job carries: secrets are excluded from the dump, and the Redis URL is
    given without its credentials."""
    return {**settings.model_dump(mode="json"), "redis_url": settings.redis_address}


def job_settings(payload: dict, connection: redis.Redis | None) -> Settings:
    """The enqueuer's settings with the user and password of this worker's connection."""
    own: dict[str, str] = {}
    if connection is not None:
        kwargs = connection.connection_pool.connection_kwargs
        if kwargs.get("username"):
            own["redis_user"] = kwargs["username"]
        if kwargs.get("password"):
            own["redis_password"] = kwargs["password"]
    return Settings(**{**payload, **own})


ALLOWED_JOBS = frozenset({f"{train_job.__module__}.{train_job.__name__}"})


class JobNotAllowed(RuntimeError):
    """A job whose function is not a registered training job: failed, never run."""


class AllowedJob(Job):
    """An rq job that performs only the functions of ``ALLOWED_JOBS``, and runs no callback
    (rq imports and calls any function a job names as its success, failure or stopped
    callback, even when the job itself failed: training jobs name none)."""

    def perform(self) -> Any:
        if self.func_name not in ALLOWED_JOBS:
            raise JobNotAllowed(
                f"{self.func_name!r} is not a training job ({', '.join(sorted(ALLOWED_JOBS))})"
            )
        return super().perform()

    @property
    def success_callback(self) -> None:
        return None

    @property
    def failure_callback(self) -> None:
        return None

    @property
    def stopped_callback(self) -> None:
        return None


def training_queue(settings: Settings, connection: redis.Redis | None = None) -> Queue:
    """The training queue: JSON jobs, performed only if allowed."""
    return Queue(
        settings.training_queue,
        connection=connection or redis_for_rq(settings),
        serializer=JSONSerializer,
        job_class=AllowedJob,
    )


def enqueue_training(settings: Settings, end: str | None = None, profile: str = "full") -> Job:
    queue = training_queue(settings)
    return queue.enqueue(
        train_job,
        settings_payload(settings),
        end,
        profile,
        job_timeout=JOB_TIMEOUT_S,
        meta={"step": "queued", "done": 0},
        description=f"train all models (end={end or 'all'}, profile={profile})",
    )
