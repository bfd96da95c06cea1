"""A replay is out of sample by construction: the stack trains (or picks from the registry)
models whose training window ends before the first session a trader watches."""

from __future__ import annotations

import time
from pathlib import Path

from structlog.testing import capture_logs

from services.stack import replay_train_end
from services.trainer.pipeline import select_out_of_sample
from shared.config import Settings
from shared.models import registry
from shared.models.loading import MODEL_CLASSES, MODEL_NAMES


def put(model_dir: Path, name: str, end: str, artifact_format: int | None = None) -> str:
    """A placeholder version (selection reads manifests only) in this code's format unless
    ``artifact_format`` is given."""
    fmt = MODEL_CLASSES[name].FORMAT if artifact_format is None else artifact_format
    version = f"v-{end}-f{fmt}"

    def write(directory: Path) -> None:
        (directory / "params.json").write_text("{}")

    manifest = {"training_window": {"start": "2015-01-01", "end": end}, "format": fmt}
    registry.publish(model_dir, name, version, write, manifest)
    time.sleep(0.01)  # created_at orders versions; keep them distinct
    return version


def test_the_default_replay_trains_up_to_the_session_before_its_first_inputs() -> None:
    # the default replay starts 2026-01-22 (Thu) from the daily features of 2026-01-21
    assert replay_train_end(Settings()) == "2026-01-20"
    monday = Settings(replay_intraday_from="2022-06-06", replay_paced_from="2022-06-06")
    assert replay_train_end(monday) == "2022-06-02"  # Monday's inputs are Friday's
    assert replay_train_end(Settings(source="yfinance")) is None  # live: every model as is
    assert replay_train_end(Settings(train_end="2020-12-31")) == "2020-12-31"


def test_a_replay_switches_to_kept_out_of_sample_versions_and_trains_the_rest(
    tmp_path: Path,
) -> None:
    settings = Settings(model_dir=tmp_path, train_end="2022-05-31")
    early = {name: put(tmp_path, name, "2022-05-31") for name in MODEL_NAMES[1:]}
    for name in MODEL_NAMES:
        put(tmp_path, name, "2025-06-30")  # the live versions, current
    assert select_out_of_sample(settings) == [MODEL_NAMES[0]]  # no fitting version: train
    for name, version in early.items():
        assert registry.current_version(tmp_path, name) == version
    fmt = MODEL_CLASSES[MODEL_NAMES[0]].FORMAT
    assert registry.current_version(tmp_path, MODEL_NAMES[0]) == f"v-2025-06-30-f{fmt}"


def test_live_goes_back_to_the_newest_kept_version(tmp_path: Path) -> None:
    name = MODEL_NAMES[0]
    newest = put(tmp_path, name, "2025-06-30")
    put(tmp_path, name, "2022-05-30")  # a replay made this one current
    assert select_out_of_sample(Settings(model_dir=tmp_path)) == list(MODEL_NAMES[1:])
    assert registry.current_version(tmp_path, name) == newest


def test_versions_written_by_older_code_are_retrained_not_served(tmp_path: Path) -> None:
    """A seller version from before the volatility core's format 2 (no trap link, no move
    blend) is never selected, live or in a replay: it counts as missing and is retrained."""
    current_format = MODEL_CLASSES["seller"].FORMAT
    assert current_format > 1
    for name in MODEL_NAMES:
        put(tmp_path, name, "2025-06-30", artifact_format=1 if name == "seller" else None)
    with capture_logs() as logs:
        assert select_out_of_sample(Settings(model_dir=tmp_path)) == ["seller"]
    outdated = [e for e in logs if e["event"] == "model_version_outdated"]
    assert [(e["model"], e["version"]) for e in outdated] == [("seller", "v-2025-06-30-f1")]
    assert select_out_of_sample(Settings(model_dir=tmp_path, train_end="2025-06-30")) == ["seller"]
    put(tmp_path, "seller", "2025-06-30")
    assert select_out_of_sample(Settings(model_dir=tmp_path)) == []
    assert registry.current_version(tmp_path, "seller") == f"v-2025-06-30-f{current_format}"


def test_live_trains_on_all_data_when_the_registry_holds_only_replay_models(
    tmp_path: Path,
) -> None:
    """After the 2021-2022 replay the registry's newest versions end 2022-05-31: a live start
    trains every model on all the bundled data (to 2025-06-30) instead of serving them."""
    for name in MODEL_NAMES:
        put(tmp_path, name, "2022-05-31")
    with capture_logs() as logs:
        assert select_out_of_sample(Settings(model_dir=tmp_path)) == list(MODEL_NAMES)
    behind = {e["model"]: e["data_end"] for e in logs if e["event"] == "model_behind_the_data"}
    ends = {name: "2025-06-30" for name in MODEL_NAMES} | {"direction_intraday": "2023-01-31"}
    assert behind == ends  # each model's own data: the intraday one ends with its minutes
    trained = tmp_path / "trained"
    for name, end in ends.items():
        put(trained, name, end)
    assert select_out_of_sample(Settings(model_dir=trained)) == []
