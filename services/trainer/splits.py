"""Time-ordered folds with a purge gap, so no training label reaches into a later fold."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Folds:
    train: np.ndarray  # row positions
    calibrate: np.ndarray
    validate: np.ndarray


def purged_folds(
    rows: np.ndarray,
    purge_sessions: int,
    calibrate_share: float = 0.15,
    validate_share: float = 0.15,
) -> Folds:
    """Split ascending row positions into train | calibrate | validate; rows whose label
    horizon (``purge_sessions``) reaches the next fold's first row are dropped."""
    n = len(rows)
    cal_start = rows[int(n * (1 - calibrate_share - validate_share))]
    val_start = rows[int(n * (1 - validate_share))]
    train = rows[rows + purge_sessions < cal_start]
    calibrate = rows[(rows >= cal_start) & (rows + purge_sessions < val_start)]
    validate = rows[rows >= val_start]
    return Folds(train, calibrate, validate)
