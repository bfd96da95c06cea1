"""Train every model, then publish each atomically and announce it on aegis:models.

Nothing is published until every requested model has trained, so a run that dies while
training leaves the registry as it was; each model's publish is atomic on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import redis

from services.trainer.artifacts import TrainedModel, version_id
from services.trainer.buyer import train_buyer
from services.trainer.data import TrainingData, load_bundled, training_data_end
from services.trainer.direction import train_direction
from services.trainer.intraday import train_intraday
from services.trainer.profiles import FULL, Profile
from services.trainer.progress import Bar
from services.trainer.seller import train_seller
from services.trainer.stats import train_stats
from shared.bus.publish import Bus, connect
from shared.config import Settings
from shared.logs import get_logger
from shared.models import registry
from shared.models.loading import MODEL_NAMES, usable

log = get_logger("trainer")
Progress = Callable[[str, int, int], None]  # (step, done, total)


def _no_progress(step: str, done: int, total: int) -> None:
    return None


def train_one(name: str, data: TrainingData, profile: Profile, settings: Settings) -> TrainedModel:
    if name == "direction":
        return train_direction(data, profile)
    if name == "direction_intraday":
        return train_intraday(data, profile)
    if name == "seller":
        return train_seller(data, profile, settings.coverage_target)
    if name == "buyer":
        return train_buyer(data, profile)
    if name == "stats":
        return train_stats(data, settings.coverage_target)
    raise ValueError(f"unknown model {name!r}")


def train_models(
    data: TrainingData,
    profile: Profile,
    settings: Settings,
    names: Sequence[str] = MODEL_NAMES,
    progress: Progress = _no_progress,
) -> list[TrainedModel]:
    trained = []
    for i, name in enumerate(names):
        progress(f"training {name}", i, len(names) + 1)
        trained.append(train_one(name, data, profile, settings))
        log.info("model_trained", model=name, window=f"{data.start}..{data.end}")
    return trained


def publish_models(
    trained: Sequence[TrainedModel],
    data: TrainingData,
    profile: Profile,
    model_dir: Path,
    bus: Bus | None,
    valid_for: dict[str, str] | None = None,
) -> list[registry.PublishResult]:
    """Publish each trained model; with ``valid_for`` (a walk-forward fold's sessions), into
    a registry that keeps every version, each carrying that period."""
    fingerprint = data.fingerprint()
    results = []
    for model in trained:
        manifest = model.manifest(profile.to_dict(), fingerprint)
        keep: int | None = registry.KEEP_VERSIONS
        if valid_for is not None:
            manifest, keep = {**manifest, "valid_for": valid_for}, None
        version = version_id(model.name, data.end, fingerprint, profile.to_dict())
        result = registry.publish(
            model_dir, model.name, version, model.write_files, manifest, keep=keep
        )
        if bus is not None:
            registry.announce(bus, result)
        results.append(result)
    return results


def _bus(settings: Settings) -> Bus | None:
    """The bus for announcements; without Redis, engines still see CURRENT when they poll."""
    client = connect(settings)
    try:
        client.ping()
    except redis.RedisError as exc:
        log.error("announce_unavailable", reason=str(exc), hint="engines must poll CURRENT")
        return None
    return Bus(client, settings)


def run_training(
    settings: Settings,
    end: str | None = None,
    profile: Profile = FULL,
    names: Sequence[str] = MODEL_NAMES,
    progress: Progress = _no_progress,
    data: TrainingData | None = None,
) -> list[registry.PublishResult]:
    data = data or load_bundled(settings.data_dir, end or settings.train_end)
    trained = train_models(data, profile, settings, names, progress)
    progress("publishing", len(names), len(names) + 1)
    results = publish_models(trained, data, profile, settings.model_dir, _bus(settings))
    progress("done", len(names) + 1, len(names) + 1)
    return results


def usable_versions(model_dir: Path, name: str) -> list[dict[str, Any]]:
    """The kept versions of ``name`` in the artifact format this code reads (one written by
    older code counts as absent: it is retrained, never served)."""
    return [v for v in registry.list_versions(model_dir, name) if usable(name, v)]


def warn_outdated(model_dir: Path) -> None:
    """One warning per kept version that this code will not read."""
    for name in MODEL_NAMES:
        for v in registry.list_versions(model_dir, name):
            if not usable(name, v):
                log.warning("model_version_outdated", model=name, version=v["version"])


def missing_models(settings: Settings) -> list[str]:
    return [
        n
        for n in MODEL_NAMES
        if registry.current_version(settings.model_dir, n)
        not in {v["version"] for v in usable_versions(settings.model_dir, n)}
    ]


def fitting_version(model_dir: Path, name: str, train_end: str) -> str | None:
    """The usable version of ``name`` trained latest while still ending by ``train_end``."""
    fits = [
        v
        for v in usable_versions(model_dir, name)
        if (v.get("training_window") or {}).get("end", "9999") <= train_end
    ]
    return max(fits, key=lambda v: v["training_window"]["end"])["version"] if fits else None


def select_out_of_sample(settings: Settings) -> list[str]:
    """With ``train_end`` set (a replay): point CURRENT at a kept version trained only on
    data up to it; returns the models with no such version (they must be trained). Without
    it (live): point CURRENT at a kept version trained on all the bundled data; returns the
    models without one (a registry a replay filled holds only older windows: they are
    trained on all data, not served)."""
    warn_outdated(settings.model_dir)
    if settings.train_end is None:
        return _select_newest(settings)
    lacking = []
    for name in MODEL_NAMES:
        version = fitting_version(settings.model_dir, name, settings.train_end)
        if version is None:
            lacking.append(name)
        elif version != registry.current_version(settings.model_dir, name):
            registry.rollback(settings.model_dir, name, version)
            log.info("model_selected_out_of_sample", model=name, version=version)
    return lacking


def _select_newest(settings: Settings) -> list[str]:
    """Live: CURRENT at the kept version trained up to the end of the bundled history (a
    replay may have pointed it at an older window); the models without such a version."""
    lacking = []
    for name in MODEL_NAMES:
        data_end = training_data_end(settings.data_dir, name) or ""
        ends = [
            v
            for v in usable_versions(settings.model_dir, name)
            if (v.get("training_window") or {}).get("end")
        ]
        newest = max(ends, key=lambda v: v["training_window"]["end"], default=None)
        if newest is None or newest["training_window"]["end"] < data_end:
            if newest is not None:
                log.info(
                    "model_behind_the_data",
                    model=name,
                    version=newest["version"],
                    data_end=data_end,
                    note="trained on all data before serving live",
                )
            lacking.append(name)
        elif not newest["current"]:
            registry.rollback(settings.model_dir, name, newest["version"])
            log.info("model_selected_newest", model=name, version=newest["version"])
    return lacking


def ensure_models(settings: Settings, profile: Profile = FULL) -> list[str]:
    """Train inline only the models the registry lacks, or, with ``settings.train_end``
    (a replay), those without a kept version trained only up to it; returns their names."""
    missing = select_out_of_sample(settings)
    if missing:
        log.info("training_missing_models", models=missing)
        bar = Bar("training missing models")
        try:
            run_training(settings, profile=profile, names=missing, progress=bar)
        finally:
            bar.close()
    return missing
