"""Turning feature dicts (as the engines hold them) into model input arrays."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from shared.features.daily import FEATURE_NAMES, SEQUENCE_FEATURES, SEQUENCE_LENGTH


def vector(values: Mapping[str, float | None], names: Sequence[str]) -> np.ndarray:
    """Values in ``names`` order as float32; missing or None become NaN (XGBoost's missing)."""
    out = np.empty(len(names), dtype=np.float32)
    for i, name in enumerate(names):
        v = values.get(name)
        out[i] = math.nan if v is None else v
    return out


def daily_vector(daily: Mapping[str, float | None]) -> np.ndarray:
    return vector(daily, FEATURE_NAMES)


def normalise_sequences(sequences: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(n, rows, features) standardised with training statistics; NaN -> 0 (the mean).
    Windows shorter than SEQUENCE_LENGTH are left-padded with zeros."""
    seq = np.asarray(sequences, dtype=np.float32)
    if seq.ndim == 2:
        seq = seq[None]
    if seq.shape[2] != len(SEQUENCE_FEATURES):
        raise ValueError(f"sequence has {seq.shape[2]} features, expected {len(SEQUENCE_FEATURES)}")
    seq = (seq[:, -SEQUENCE_LENGTH:] - mean) / std
    seq = np.nan_to_num(seq, nan=0.0, posinf=0.0, neginf=0.0)
    if seq.shape[1] < SEQUENCE_LENGTH:
        pad = np.zeros((seq.shape[0], SEQUENCE_LENGTH - seq.shape[1], seq.shape[2]), np.float32)
        seq = np.concatenate([pad, seq], axis=1)
    return seq.astype(np.float32)
