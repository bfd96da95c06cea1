"""Shared helpers for the model tests: a short data window and fast-trained models,
trained once per test process."""

from __future__ import annotations

import tempfile
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

import numpy as np

from services.trainer.data import TrainingData, load_bundled
from services.trainer.pipeline import publish_models, train_models
from services.trainer.profiles import FAST
from shared.config import PROJECT_ROOT, Settings
from shared.models.base import ArtifactModel
from shared.models.loading import MODEL_CLASSES, load_model

WINDOW = ("2018-01-01", "2021-06-30")
Model = TypeVar("Model", bound=ArtifactModel)


@lru_cache(maxsize=1)
def short_data() -> TrainingData:
    full = load_bundled(PROJECT_ROOT / "data", WINDOW[1])
    minutes = full.minutes
    return TrainingData(full.frame.loc[WINDOW[0] :], minutes)


@lru_cache(maxsize=1)
def trained_registry() -> Path:
    """A registry with every model trained (fast profile) on the short window."""
    model_dir = Path(tempfile.mkdtemp(prefix="aegis-test-models-"))
    data = short_data()
    publish_models(train_models(data, FAST, Settings()), data, FAST, model_dir, bus=None)
    return model_dir


def snapshot(row: int = -1) -> tuple[dict[str, float | None], np.ndarray]:
    data = short_data()
    daily = {k: (None if v != v else float(v)) for k, v in data.features.iloc[row].items()}
    return daily, data.sequences[row]


def loaded(model_dir: Path, cls: type[Model], version: str | None = None) -> Model:
    """``load_model`` of the model ``cls`` implements (e.g. ``SellerModels``), typed as such."""
    name = next(name for name, known in MODEL_CLASSES.items() if known is cls)
    model = load_model(model_dir, name, version)
    assert isinstance(model, cls)
    return model
