"""What a trainer hands the registry: files to write, params, feature sets and metrics."""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import sklearn
import torch
import xgboost

import shared
from shared.models.base import PARAMS_FILE
from shared.models.loading import MODEL_CLASSES, RUNNING_FEATURES

# Source that decides what a model is: a change here yields a new version id.
_CODE_DIRS = ("shared/features", "shared/models", "services/trainer")
_CODE_ROOT = Path(shared.__file__).resolve().parent.parent  # holds the shared/ package


@dataclass
class TrainedModel:
    name: str
    feature_sets: tuple[str, ...]
    params: dict[str, Any]
    metrics: dict[str, Any]
    training_window: dict[str, str]
    writers: dict[str, Callable[[Path], None]] = field(default_factory=dict)

    def write_files(self, directory: Path) -> None:
        for filename, writer in self.writers.items():
            writer(directory / filename)
        (directory / PARAMS_FILE).write_text(json.dumps(to_json(self.params), indent=1))

    def manifest(self, profile: dict[str, Any], data_fingerprint: str) -> dict[str, Any]:
        return {
            "training_window": self.training_window,
            "features": {k: list(RUNNING_FEATURES[k]) for k in self.feature_sets},
            "libraries": library_versions(),
            "metrics": to_json(self.metrics),
            "profile": profile,
            "data_sha256": data_fingerprint,
            "format": MODEL_CLASSES[self.name].FORMAT,
        }


def library_versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "xgboost": xgboost.__version__,
        "torch": torch.__version__,
        "safetensors": safetensors.__version__,
        "scikit-learn": sklearn.__version__,
    }


def code_fingerprint() -> str:
    """The training code's digest: the same in the source tree and where it is installed."""
    digest = hashlib.sha256()
    for folder in _CODE_DIRS:
        for path in sorted((_CODE_ROOT / folder).rglob("*.py")):
            digest.update(path.relative_to(_CODE_ROOT).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def version_id(name: str, end: str, data_fingerprint: str, profile: dict[str, Any]) -> str:
    """Same data, code, profile and seed -> same version (jobs are idempotent)."""
    digest = hashlib.sha256(
        json.dumps([name, data_fingerprint, code_fingerprint(), profile], sort_keys=True).encode()
    ).hexdigest()
    return f"{end.replace('-', '')}-{digest[:10]}"


def to_json(value: Any) -> Any:
    """numpy scalars/arrays and NaN made JSON-safe (NaN -> None)."""
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_json(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not np.isfinite(value) else float(value)
    return value
