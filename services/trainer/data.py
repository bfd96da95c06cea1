"""Training data: the bundled daily history through the one feature implementation, plus
the recorded 1-minute bars. Fingerprinted so a version id names exactly what it saw."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from shared.features.daily import SEQUENCE_FEATURES, SEQUENCE_LENGTH, compute_daily_features
from shared.features.history import load_daily_csvs, merge_nifty_vix

MINUTE_FILE = "nifty50_1min_2021-01_2023-01.csv.gz"


@dataclass
class TrainingData:
    """Daily frame (open, high, low, close, vix) and its features, cut at ``end``."""

    frame: pd.DataFrame
    minutes: pd.DataFrame | None = None  # columns open_time (epoch s), open, high, low, close, date
    features: pd.DataFrame = field(init=False)

    def __post_init__(self) -> None:
        self.features = compute_daily_features(self.frame)

    @property
    def start(self) -> str:
        return f"{self.frame.index[0]:%Y-%m-%d}"

    @property
    def end(self) -> str:
        return f"{self.frame.index[-1]:%Y-%m-%d}"

    @cached_property
    def sequences(self) -> np.ndarray:
        """(rows, SEQUENCE_LENGTH, features): the window ending at each row (NaN-padded)."""
        values = self.features[list(SEQUENCE_FEATURES)].to_numpy(dtype=np.float32)
        pad = np.full((SEQUENCE_LENGTH - 1, values.shape[1]), np.nan, dtype=np.float32)
        padded = np.concatenate([pad, values])
        windows = np.lib.stride_tricks.sliding_window_view(padded, SEQUENCE_LENGTH, axis=0)
        return np.ascontiguousarray(windows.transpose(0, 2, 1))

    def fingerprint(self) -> str:
        digest = hashlib.sha256(pd.util.hash_pandas_object(self.frame).to_numpy().tobytes())
        if self.minutes is not None:
            digest.update(pd.util.hash_pandas_object(self.minutes).to_numpy().tobytes())
        return digest.hexdigest()

    def cut(self, end: str | pd.Timestamp) -> TrainingData:
        """The same data as known at the close of ``end`` (features recomputed)."""
        minutes = None
        if self.minutes is not None:
            minutes = self.minutes[self.minutes["date"] <= pd.Timestamp(end)]
        return TrainingData(self.frame.loc[:end], minutes)


def load_minutes(path: Path) -> pd.DataFrame:
    raw = pd.read_csv(path)
    stamps = pd.to_datetime(raw["timestamp"])
    return pd.DataFrame(
        {
            "open_time": stamps.map(lambda t: int(t.timestamp())).to_numpy(),
            "open": raw["open"].to_numpy(float),
            "high": raw["high"].to_numpy(float),
            "low": raw["low"].to_numpy(float),
            "close": raw["close"].to_numpy(float),
            "date": pd.to_datetime(raw["timestamp"].str[:10]),
        }
    )


def load_training_data(
    nifty_csvs: Sequence[Path],
    vix_csvs: Sequence[Path],
    minute_csv: Path | None,
    end: str | None = None,
) -> TrainingData:
    """The daily history of the given files (one series each, in any number of periods)."""
    frame = merge_nifty_vix(load_daily_csvs(nifty_csvs), load_daily_csvs(vix_csvs))
    minutes = load_minutes(minute_csv) if minute_csv and minute_csv.exists() else None
    data = TrainingData(frame, minutes)
    return data.cut(end) if end else data


def training_data_end(data_dir: Path, model: str) -> str | None:
    """Where training ``model`` on all the bundled data ends: the last session of the
    1-minute history for the intraday direction model, of the daily history for the rest."""
    if model == "direction_intraday":
        path = data_dir / MINUTE_FILE
        text = gzip.open(path, "rt").read() if path.exists() else ""
    else:
        path = data_dir / "nifty50_daily.csv"
        text = path.read_text() if path.exists() else ""
    last = text.rstrip().rsplit("\n", 1)[-1]
    return last[:10] if last[:4].isdigit() else None


def load_bundled(data_dir: Path, end: str | None = None) -> TrainingData:
    return load_training_data(
        [data_dir / "nifty50_daily.csv"],
        [data_dir / "india_vix_daily.csv"],
        data_dir / MINUTE_FILE,
        end,
    )
