"""Loading the bundled daily CSVs into the frame ``compute_daily_features`` expects."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd


def load_daily_csv(path: Path) -> pd.DataFrame:
    """A daily OHLC CSV in the format of data/ (date,open,high,low,close[,...])."""
    frame = pd.read_csv(path, parse_dates=["date"]).set_index("date").sort_index()
    if frame.index.has_duplicates:
        raise ValueError(f"{path} has duplicate dates")
    return frame


def load_daily_csvs(paths: Sequence[Path]) -> pd.DataFrame:
    """Several daily CSVs of one series (e.g. the bundled history and a later period) as one
    frame in date order; a date in two files is refused."""
    frame = pd.concat([load_daily_csv(path) for path in paths]).sort_index()
    if frame.index.has_duplicates:
        dates = sorted({f"{d:%Y-%m-%d}" for d in frame.index[frame.index.duplicated()]})
        raise ValueError(f"dates in more than one of {[str(p) for p in paths]}: {dates[:5]}")
    return frame


def merge_nifty_vix(nifty: pd.DataFrame, vix: pd.DataFrame) -> pd.DataFrame:
    """NIFTY OHLC per NIFTY session with the latest India VIX close known on that date."""
    vix_close = vix["close"].rename("vix").sort_index()
    merged = pd.merge_asof(
        nifty[["open", "high", "low", "close"]].sort_index(),
        vix_close.to_frame(),
        left_index=True,
        right_index=True,
        direction="backward",
    )
    return merged


def load_history(data_dir: Path, end: str | None = None) -> pd.DataFrame:
    """The bundled NIFTY + VIX daily history, optionally cut at ``end`` (inclusive)."""
    frame = merge_nifty_vix(
        load_daily_csv(data_dir / "nifty50_daily.csv"),
        load_daily_csv(data_dir / "india_vix_daily.csv"),
    )
    return frame.loc[:end] if end else frame
