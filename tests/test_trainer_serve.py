"""The trainer container's command, ``python -m services.trainer serve`` (train what the
registry lacks, then the rq worker), is PID 1 there: a stop signal must end it promptly and
cleanly in either phase, with no half-written model version left behind."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
import redis
from rq import Worker

from shared.config import Settings
from shared.models import registry
from tests.models_support import WINDOW, trained_registry
from tests.processes import kill_tree, trainer_command
from tests.waiting import wait_for

pytestmark = pytest.mark.slow

STOP_WITHIN_S = 15


def _serve(settings: Settings, log: Path, **extra: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "AEGIS_REDIS_URL": settings.redis_url,
        "AEGIS_EMBEDDED_REDIS": "false",
        "AEGIS_MODEL_DIR": str(settings.model_dir),
        "AEGIS_TRAINING_QUEUE": settings.training_queue,
        "AEGIS_LOG_JSON": "true",
        **extra,
    }
    with log.open("ab") as out:
        return trainer_command(env, "serve", output=out)


def _stopped(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=STOP_WITHIN_S)
    finally:
        kill_tree(proc)


def test_a_stop_while_training_ends_serve_cleanly(settings: Settings, tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    proc = _serve(settings, log)
    wait_for(
        lambda: "training_missing_models" in log.read_text(),
        timeout_s=120,
        message="serve training the missing models",
    )
    assert _stopped(proc) == 0, log.read_text()[-2000:]
    assert "stopped by SIGTERM while training" in log.read_text()
    names = [p.name for p in settings.model_dir.iterdir()] if settings.model_dir.exists() else []
    for name in names:  # what was published before the stop is whole
        for version in registry.list_versions(settings.model_dir, name):
            version_dir = registry.model_root(settings.model_dir, name) / version["version"]
            assert registry.verify(version_dir) == [], (name, version)


def test_a_stop_ends_the_worker_serve_started(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    shutil.copytree(trained_registry(), settings.model_dir, dirs_exist_ok=True)
    log = tmp_path / "serve.log"
    proc = _serve(settings, log, AEGIS_TRAIN_END=WINDOW[1])  # the registry's own window
    wait_for(
        lambda: len(Worker.all(connection=redis_client)) == 1,
        timeout_s=120,
        message="the rq worker registered (nothing left to train)",
    )
    assert "training_missing_models" not in log.read_text()
    assert _stopped(proc) == 0, log.read_text()[-2000:]
    assert Worker.all(connection=redis_client) == []
