"""One var/ holds one dataset: a run with another stops before it starts anything."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from services import dataset
from shared.config import PROJECT_ROOT, Settings


def test_the_first_run_claims_var_and_the_same_dataset_runs_again(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path / "var")
    dataset.claim(settings)
    assert (tmp_path / "var" / "dataset.json").exists()
    dataset.claim(settings.model_copy(update={"replay_speed": 0.0, "replay_paced_from": None}))


@pytest.mark.parametrize(
    "change",
    [
        {"replay_intraday_from": "2022-06-01", "replay_end": "2023-01-31"},
        {"chain_file": None},
        {"source": "yfinance"},
    ],
)
def test_another_dataset_is_refused_with_what_to_do(tmp_path: Path, change: dict) -> None:
    settings = Settings(var_dir=tmp_path / "var")
    dataset.claim(settings)
    with pytest.raises(dataset.DatasetConflict, match="holds another dataset") as refused:
        dataset.claim(settings.model_copy(update=change))
    assert "make clean" in str(refused.value) and "AEGIS_VAR_DIR" in str(refused.value)


def test_the_stack_refuses_another_dataset_before_starting_anything(tmp_path: Path) -> None:
    var = tmp_path / "var"
    dataset.claim(Settings(var_dir=var))
    env = {
        **os.environ,
        "AEGIS_VAR_DIR": str(var),
        "AEGIS_REPLAY_DAILY_FROM": "2020-09-01",
        "AEGIS_REPLAY_INTRADAY_FROM": "2022-06-01",
        "AEGIS_REPLAY_END": "2023-01-31",
    }
    run = subprocess.run(
        [sys.executable, "-m", "services.stack"],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1
    assert "holds another dataset" in run.stderr.strip().splitlines()[-1]
    assert not (var / "redis").exists()  # no Redis started, no bar published
