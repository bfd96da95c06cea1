"""``load_model``: the only way engines get a model. Refuses loudly, never falls back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shared.features.daily import FEATURE_NAMES, SEQUENCE_FEATURES
from shared.features.intraday import INTRADAY_FEATURE_NAMES
from shared.logs import get_logger
from shared.models import registry
from shared.models.api import LoadedModel, ModelLoadError
from shared.models.base import ArtifactModel
from shared.models.buyer import BuyerModels
from shared.models.direction import DirectionEnsemble
from shared.models.intraday import IntradayDirection
from shared.models.seller import SellerModels
from shared.models.stats import MeasuredStatistics

log = get_logger("models")

MODEL_CLASSES: dict[str, type[ArtifactModel]] = {
    "direction": DirectionEnsemble,
    "direction_intraday": IntradayDirection,
    "seller": SellerModels,
    "buyer": BuyerModels,
    "stats": MeasuredStatistics,
}
MODEL_NAMES: tuple[str, ...] = tuple(MODEL_CLASSES)

# The feature sets as this code computes them; a manifest must list them identically.
RUNNING_FEATURES: dict[str, tuple[str, ...]] = {
    "daily": FEATURE_NAMES,
    "sequence": SEQUENCE_FEATURES,
    "intraday": INTRADAY_FEATURE_NAMES,
}


def _refuse(name: str, reason: str) -> ModelLoadError:
    log.error("model_load_refused", model=name, reason=reason)
    return ModelLoadError(f"model {name!r} cannot be loaded: {reason}")


def check_features(name: str, manifest: dict[str, Any]) -> None:
    declared = manifest.get("features")
    if not isinstance(declared, dict) or not declared:
        raise _refuse(name, "manifest lists no feature names")
    for kind, names in declared.items():
        running = RUNNING_FEATURES.get(kind)
        if running is None:
            raise _refuse(name, f"manifest feature set {kind!r} is unknown to this code")
        if tuple(names) != running:
            missing = sorted(set(running) - set(names))
            extra = sorted(set(names) - set(running))
            detail = f"missing {missing}, extra {extra}" if missing or extra else "order differs"
            raise _refuse(
                name, f"{kind} feature names in manifest differ from the running code ({detail})"
            )


def usable(name: str, manifest: dict[str, Any]) -> bool:
    """Whether this code reads the version's artifact format (else it must be retrained)."""
    cls = MODEL_CLASSES.get(name)
    return cls is not None and cls.format_of(manifest) == cls.FORMAT


def load_model(model_dir: Path, name: str, version: str | None = None) -> LoadedModel:
    """The current (or given) version of ``name``, sha256- and feature-verified."""
    cls = MODEL_CLASSES.get(name)
    if cls is None:
        raise _refuse(name, f"unknown model name (known: {', '.join(MODEL_NAMES)})")
    version = version or registry.current_version(Path(model_dir), name)
    if version is None:
        raise _refuse(name, f"no CURRENT version in {registry.model_root(Path(model_dir), name)}")
    directory = registry.model_root(Path(model_dir), name) / version
    if not directory.is_dir():
        raise _refuse(name, f"version {version} not found at {directory}")
    problems = registry.verify(directory)
    if problems:
        raise _refuse(name, f"version {version} failed sha256 verification: {'; '.join(problems)}")
    manifest = registry.read_manifest(directory)
    if manifest.get("name") != name:
        raise _refuse(name, f"manifest names model {manifest.get('name')!r}")
    if cls.format_of(manifest) != cls.FORMAT:
        raise _refuse(
            name,
            f"version {version} holds artifact format {cls.format_of(manifest)}, this code "
            f"reads format {cls.FORMAT}: retrain it",
        )
    check_features(name, manifest)
    try:
        model = cls(directory, manifest)
    except Exception as exc:  # a corrupt artifact of any kind is a load error, named
        raise _refuse(name, f"version {version} artifacts unreadable: {exc}") from exc
    log.info("model_loaded", model=name, version=version)
    return model
