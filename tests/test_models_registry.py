"""Registry: atomic publish, CURRENT pointer, rollback, sha256 and feature verification."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

import pytest

from shared.models import registry
from shared.models.api import ModelLoadError
from shared.models.loading import load_model
from tests.models_support import trained_registry


@pytest.fixture()
def model_dir(tmp_path: Path) -> Path:
    target = tmp_path / "models"
    shutil.copytree(trained_registry(), target)
    return target


def _version_dir(model_dir: Path, name: str) -> Path:
    version = registry.current_version(model_dir, name)
    assert version is not None
    return model_dir / name / version


def test_every_model_loads_and_verifies(model_dir: Path) -> None:
    for name in ("direction", "direction_intraday", "seller", "buyer", "stats"):
        assert registry.verify(_version_dir(model_dir, name)) == []
        model = load_model(model_dir, name)
        assert model.ref.name == name
        manifest = model.manifest
        assert manifest["files"] and manifest["libraries"]["xgboost"]
        assert manifest["training_window"]["end"] == "2021-06-30"


def test_no_pickles_in_artifacts(model_dir: Path) -> None:
    suffixes = {p.suffix for p in model_dir.rglob("*") if p.is_file()}
    assert suffixes <= {".ubj", ".safetensors", ".json", ""}, suffixes


def test_tampered_artifact_is_refused_naming_sha256(model_dir: Path) -> None:
    booster = _version_dir(model_dir, "direction") / "xgb_t5.ubj"
    data = bytearray(booster.read_bytes())
    data[len(data) // 2] ^= 0xFF
    booster.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="sha256") as err:
        load_model(model_dir, "direction")
    assert "direction" in str(err.value)


def test_feature_mismatch_is_refused(model_dir: Path) -> None:
    path = _version_dir(model_dir, "seller") / registry.MANIFEST
    manifest = json.loads(path.read_text())
    manifest["features"]["daily"] = [*manifest["features"]["daily"][:-1], "old_feature"]
    path.write_text(json.dumps(manifest))  # manifest itself is not hashed: features checked
    with pytest.raises(ModelLoadError, match="feature names") as err:
        load_model(model_dir, "seller")
    assert "seller" in str(err.value) and "old_feature" in str(err.value)


def test_a_version_in_an_older_artifact_format_is_refused(model_dir: Path) -> None:
    path = _version_dir(model_dir, "seller") / registry.MANIFEST
    manifest = json.loads(path.read_text())
    assert manifest["format"] == 2  # the trainer records the format it wrote
    path.write_text(json.dumps({**manifest, "format": 1}))
    with pytest.raises(ModelLoadError, match="artifact format 1, this code reads format 2"):
        load_model(model_dir, "seller")


def test_missing_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no CURRENT"):
        load_model(tmp_path, "buyer")


def _write(text: str) -> Callable[[Path], None]:
    def write(directory: Path) -> None:
        (directory / "params.json").write_text(text)

    return write


def test_publish_is_idempotent_and_rollback_restores(tmp_path: Path) -> None:
    manifest = {"training_window": {"start": "a", "end": "b"}}
    first = registry.publish(tmp_path, "stats_test", "v1", _write("{}"), manifest)
    again = registry.publish(tmp_path, "stats_test", "v1", _write("{}"), manifest)
    assert first.created and not again.created
    registry.publish(tmp_path, "stats_test", "v2", _write('{"a": 1}'), manifest)
    assert registry.current_version(tmp_path, "stats_test") == "v2"
    assert registry.rollback(tmp_path, "stats_test") == "v1"
    assert registry.current_version(tmp_path, "stats_test") == "v1"
    assert [v["version"] for v in registry.list_versions(tmp_path, "stats_test")] == ["v1", "v2"]


def test_failed_write_leaves_current_untouched(tmp_path: Path) -> None:
    manifest = {"training_window": {"start": "a", "end": "b"}}
    registry.publish(tmp_path, "m", "v1", _write("{}"), manifest)

    def explode(directory: Path) -> None:
        (directory / "params.json").write_text("{partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        registry.publish(tmp_path, "m", "v2", explode, manifest)
    assert registry.current_version(tmp_path, "m") == "v1"
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["CURRENT", "v1"]


def test_a_walk_forward_registry_keeps_every_fold_and_picks_the_one_valid_for_a_session(
    tmp_path: Path,
) -> None:
    ends = ["2019-06-07", "2019-08-30", "2019-12-06", "2020-03-06", "2020-03-31"]
    for i, (end, through) in enumerate(pairwise(ends)):
        manifest = {
            "training_window": {"start": "2007-09-17", "end": end},
            "valid_for": {"after": end, "through": through},
        }
        registry.publish(tmp_path, "m", f"v{i}", _write("{}"), manifest, keep=None)
    versions = registry.list_versions(tmp_path, "m")
    assert len(versions) == 4 > registry.KEEP_VERSIONS  # none pruned
    pick = {
        day: registry.valid_version(versions, day)
        for day in ("2019-06-07", "2019-06-10", "2019-12-06", "2019-12-09", "2020-03-31")
    }
    # a fold's training end is served by the fold before it; the day after, by its own
    assert pick == {
        "2019-06-07": None,
        "2019-06-10": "v0",
        "2019-12-06": "v1",
        "2019-12-09": "v2",
        "2020-03-31": "v3",
    }
    assert registry.valid_version(versions, "2020-04-01") is None  # after the last fold
    # a period that claims a session its version was trained on is never served
    leaky = [{**versions[1], "valid_for": {"after": "2019-08-01", "through": "2019-12-06"}}]
    assert registry.valid_version(leaky, "2019-08-20") is None
    # the same version published with other folds' periods is refused, not silently kept
    other = {"training_window": {"start": "2007-09-17", "end": "2019-06-07"}}
    with pytest.raises(registry.RegistryError, match="valid for"):
        registry.publish(tmp_path, "m", "v0", _write("{}"), other, keep=None)
