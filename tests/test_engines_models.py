"""The model path: engines with models trained by ``python -m services.trainer train --fast``
(real registry, real loader) publish model provenance, list versions, report ok health."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from shared.bus.engine import EngineWorker
from shared.bus.publish import Bus
from shared.config import PROJECT_ROOT, Settings
from shared.contract.blocks import walk_provenance
from tests.block_factory import typed_data
from tests.engines_support import daily_snapshot, intraday_snapshot
from tests.test_engines import ENGINES, health, running, wait_blocks
from tests.waiting import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model_dir = tmp_path_factory.mktemp("trained")
    env = {
        **os.environ,
        "AEGIS_MODEL_DIR": str(model_dir),
        "AEGIS_EMBEDDED_REDIS": "false",
        "AEGIS_LOG_LEVEL": "WARNING",
    }
    subprocess.run(
        [sys.executable, "-m", "services.trainer", "train", "--fast"],
        cwd=PROJECT_ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=900,
    )
    return model_dir


@pytest.mark.parametrize("worker_cls", ENGINES, ids=lambda c: c.engine)
def test_engines_use_trained_models(
    worker_cls: type[EngineWorker], trained: Path, settings: Settings, redis_client: redis.Redis
) -> None:
    settings = settings.model_copy(update={"model_dir": trained})
    bus = Bus(redis_client, settings)
    bus.publish(daily_snapshot("2025-06-27"))
    bus.publish(intraday_snapshot("2025-06-27", 60, drift_points=5.0))
    with running(worker_cls, settings) as worker:
        daily, intraday = wait_blocks(redis_client, worker.engine, 2)
        report = wait_for(lambda: health(redis_client, worker.service, "t1"), message="health")
    assert report["status"] == "ok" and not report["degraded_reasons"]
    assert {m["name"] for m in report["models"]} == set(worker.model_names)
    for block in (daily, intraday):
        assert not block.degraded
        sources = dict(walk_provenance(typed_data(block)))
        assert {p.source for p in sources.values()} <= {
            "model",
            "formula",
            "data",
            "climatology",
        }
        for p in sources.values():  # a base rate names the model and window it came from
            assert p.source != "climatology" or (p.model in worker.model_names and p.window)
        assert {m.name for m in block.models} <= set(worker.model_names)
        assert block.models
    if worker.engine == "direction":
        assert intraday.data["today"]["provenance"]["model"] == "direction_intraday"
        assert (
            intraday.data["horizons"]["t1"]["probabilities"]
            == daily.data["horizons"]["t1"]["probabilities"]
        )
    if worker.engine == "buyer":  # the model's score is a whole-session one, and says so
        breakout = intraday.data["breakout_today"]
        assert (
            breakout["broken"] is not None
            or breakout["basis"] == "whole session, as seen at the open"
        )
