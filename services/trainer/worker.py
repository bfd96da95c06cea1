"""The training worker: an rq worker on the training queue plus rq's CronScheduler, which
enqueues a full retrain every Saturday morning IST (after the week's last session)."""

from __future__ import annotations

import multiprocessing

from rq import Queue, Worker
from rq.cron import CronJob, CronScheduler

from services.trainer.jobs import JOB_TIMEOUT_S, redis_for_rq, settings_payload, train_job
from shared.config import Settings
from shared.logs import get_logger

log = get_logger("trainer")
WEEKLY_CRON_UTC = "30 0 * * 6"  # Saturday 06:00 IST


def register_weekly(scheduler: CronScheduler, settings: Settings) -> CronJob:
    """The weekly retrain. Its kwargs are stored in the scheduler's hash and become the job's
    arguments and description: ``settings_payload`` holds no secret."""
    return scheduler.register(
        train_job,
        queue_name=settings.training_queue,
        cron=WEEKLY_CRON_UTC,
        kwargs={"settings": settings_payload(settings)},
        job_timeout=JOB_TIMEOUT_S,
        name="weekly-retrain",
    )


def run_cron(settings: Settings) -> None:
    scheduler = CronScheduler(connection=redis_for_rq(settings), name="aegis-weekly-training")
    register_weekly(scheduler, settings)
    scheduler.start()


def run_worker(settings: Settings, burst: bool = False, schedule: bool = True) -> None:
    cron = None
    if schedule and not burst:
        cron = multiprocessing.get_context("spawn").Process(
            target=run_cron, args=(settings,), name="training-cron", daemon=True
        )
        cron.start()
        log.info("cron_started", schedule=WEEKLY_CRON_UTC, queue=settings.training_queue)
    try:
        connection = redis_for_rq(settings)
        worker = Worker(
            [Queue(settings.training_queue, connection=connection)], connection=connection
        )
        worker.work(burst=burst, with_scheduler=False)
    finally:
        if cron is not None:
            cron.terminate()
            cron.join()
