"""Training as an rq job on ``settings.training_queue``, reporting progress in job.meta."""

from __future__ import annotations

import redis
from rq import Queue, get_current_job
from rq.job import Job

from services.trainer.pipeline import run_training
from services.trainer.profiles import PROFILES
from shared.config import Settings

JOB_TIMEOUT_S = 1800


def redis_for_rq(settings: Settings) -> redis.Redis:
    """rq blocks on its own timeouts; it needs a client without a short socket timeout."""
    return redis.Redis.from_url(settings.redis_url)


def train_job(
    settings: dict, end: str | None = None, profile: str = "full"
) -> list[dict[str, str]]:
    """The job body: train every model, publish, return what was published. ``settings``
    is the enqueuer's Settings as JSON, so the worker trains into the same registry."""
    job = get_current_job()

    def progress(step: str, done: int, total: int) -> None:
        if job is not None:
            job.meta.update(step=step, done=done, total=total)
            job.save_meta()

    results = run_training(
        Settings(**settings), end=end, profile=PROFILES[profile], progress=progress
    )
    return [{"name": r.name, "version": r.version} for r in results]


def settings_payload(settings: Settings) -> dict:
    return settings.model_dump(mode="json")


def enqueue_training(settings: Settings, end: str | None = None, profile: str = "full") -> Job:
    queue = Queue(settings.training_queue, connection=redis_for_rq(settings))
    return queue.enqueue(
        train_job,
        settings_payload(settings),
        end,
        profile,
        job_timeout=JOB_TIMEOUT_S,
        meta={"step": "queued", "done": 0},
        description=f"train all models (end={end or 'all'}, profile={profile})",
    )
