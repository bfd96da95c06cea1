"""No secret in the training queue: a job enqueued by hand and one enqueued as the weekly
schedule does, run by a real worker process connecting as the ``trainer`` ACL user; neither
its log nor any value of any rq key holds a Redis password or the API token."""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from rq.cron import CronScheduler
from rq.job import Job

from services.trainer.jobs import enqueue_training, job_settings, settings_payload
from services.trainer.worker import register_weekly
from shared.config import Settings
from shared.redis_ops.acl import load_or_create_passwords
from shared.redis_ops.server import RedisServer
from tests.ports import free_port
from tests.processes import kill_tree, trainer_worker
from tests.waiting import wait_for

API_TOKEN = "tok-Zq8#never-in-redis"


@pytest.fixture(scope="module")
def acl_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    folder = tmp_path_factory.mktemp("acl")
    passwords = load_or_create_passwords(folder / "credentials.json")
    with RedisServer(free_port(), "unused", folder / "redis", passwords=passwords) as server:
        yield server


def settings_as(server: RedisServer, user: str, tmp_path: Path, **extra: Any) -> Settings:
    assert server.passwords is not None
    return Settings(
        redis_url=server.address,
        redis_user=user,
        redis_password=server.passwords[user],
        embedded_redis=False,
        model_dir=tmp_path / "models",
        var_dir=tmp_path / "var",
        **extra,
    )


def rq_values(client: redis.Redis) -> Iterator[tuple[str, bytes]]:
    """Every value of every rq key (job data decompressed as rq stores it zlib-compressed)."""
    for raw_key in client.scan_iter(match="rq:*", count=500):
        key = raw_key.decode()
        kind = client.type(raw_key)
        values: list[object]
        if kind == b"hash":
            values = [v for kv in client.hgetall(raw_key).items() for v in kv]
        elif kind == b"string":
            values = [client.get(raw_key) or b""]
        elif kind == b"list":
            values = list(client.lrange(raw_key, 0, -1))
        elif kind == b"set":
            values = list(client.smembers(raw_key))
        elif kind == b"zset":
            values = list(client.zrange(raw_key, 0, -1))
        else:
            values = [b""]
        for value in values:
            assert isinstance(value, bytes)  # the client keeps replies as bytes
            yield key, value
            try:
                yield key, zlib.decompress(value)
            except zlib.error:
                pass


@pytest.mark.slow
def test_no_secret_in_job_arguments_hashes_or_worker_logs(
    acl_server: RedisServer, tmp_path: Path
) -> None:
    enqueuer = settings_as(acl_server, "admin", tmp_path, api_token=API_TOKEN)
    admin = redis.Redis.from_url(enqueuer.redis_url)
    by_hand = enqueue_training(enqueuer, end="2021-06-30", profile="fast")
    scheduler = CronScheduler(connection=admin, name="aegis-weekly-training")
    weekly = register_weekly(scheduler, enqueuer).enqueue(admin)  # as the schedule does
    scheduler.save()  # the scheduler's hash holds the cron job's kwargs

    assert acl_server.passwords is not None
    worker_env = {
        **os.environ,
        "AEGIS_REDIS_URL": acl_server.address,
        "AEGIS_REDIS_USER": "trainer",
        "AEGIS_REDIS_PASSWORD": acl_server.passwords["trainer"],
        "AEGIS_API_TOKEN": API_TOKEN,
        "AEGIS_EMBEDDED_REDIS": "false",
        "AEGIS_MODEL_DIR": str(tmp_path / "models"),
        "AEGIS_LOG_JSON": "true",
    }
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = trainer_worker(worker_env, "--burst", output=log)
    try:

        def weekly_training() -> bool:
            weekly.refresh()
            return str(weekly.meta.get("step", "")).startswith("training")

        wait_for(weekly_training, 240, "the weekly job to start training after the first")
    finally:
        kill_tree(worker)

    by_hand.refresh()
    assert by_hand.is_finished, by_hand.latest_result()
    results = by_hand.return_value()
    assert results is not None and {r["name"] for r in results} and weekly.is_started
    secrets = [API_TOKEN, *acl_server.passwords.values()]
    logged = log_path.read_bytes()
    assert b"weekly-retrain" in logged or b"train_job" in logged  # the worker logged the jobs
    for secret in secrets:
        assert secret.encode() not in logged, "a secret in the worker log"
    checked = 0
    for key, value in rq_values(admin):
        checked += 1
        for secret in secrets:
            assert secret.encode() not in value, f"a secret in {key}"
    assert checked > 20
    for job in (by_hand, weekly):
        stored = Job.fetch(job.id, connection=admin)
        assert not any(s in (stored.description or "") for s in secrets)
    assert weekly.kwargs["settings"]["redis_url"] == acl_server.address


def test_a_job_connects_with_the_workers_credentials(
    acl_server: RedisServer, tmp_path: Path
) -> None:
    enqueuer = settings_as(acl_server, "admin", tmp_path, api_token=API_TOKEN)
    payload = settings_payload(enqueuer)
    assert "redis_password" not in payload and "api_token" not in payload
    trainer = redis.Redis.from_url(settings_as(acl_server, "trainer", tmp_path).redis_url)
    settings = job_settings(payload, trainer)
    assert settings.redis_user == "trainer" and settings.api_token is None
    assert redis.Redis.from_url(settings.redis_url).acl_whoami() == "trainer"
