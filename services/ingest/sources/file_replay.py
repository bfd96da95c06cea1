"""Replay of the bundled data files (daily NIFTY + India VIX, NIFTY 1-minute) in event order.

A daily bar happens at its session close (15:30 IST), a 1-minute bar at its end; at one
event time the minute comes first (``ordering``). Bars before ``paced_from`` go as fast as
possible; later ones wait ``event gap / speed`` seconds (never more than ``max_gap_s``, so
nights and weekends do not stall a 60x replay).
"""

from __future__ import annotations

import heapq
import itertools
import math
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from services.ingest.sources.base import RejectedInput
from services.ingest.sources.ordering import Rank, rank
from shared.config import Settings
from shared.contract.schemas import Bar
from shared.market import calendar

# Per series, the bundled files in time order: a later file adds only the dates after the
# earlier ones' last (data/SOURCES.md: the history, then its 2025-07..2026-02 continuation).
DAILY_FILES = {
    "NIFTY": ("nifty50_daily.csv", "nifty50_daily_2025-07_2026-02.csv"),
    "VIX": ("india_vix_daily.csv", "india_vix_daily_2025-07_2026-02.csv"),
}
MINUTE_FILES = ("nifty50_1min_2021-01_2023-01.csv.gz", "nifty50_1min_2026-01-01_2026-02-06.csv.gz")
# (event time, tie-break rank, event), merged on the first two (see ``ordering``).
TimedEvent = tuple[int, Rank, Bar | RejectedInput]


@dataclass(frozen=True)
class ReplayWindow:
    daily_from: str | None = None
    intraday_from: str | None = None
    end: str | None = None
    include_intraday: bool = True


def _rows(frame: pd.DataFrame) -> Iterator[tuple]:
    return frame.itertuples(index=False, name=None)


def daily_series_events(
    paths: Sequence[Path], symbol: str, start: str | None, end: str | None
) -> Iterator[TimedEvent]:
    """One series from several files in time order; a file's dates up to the last date of
    the files before it are left out (a continuation may repeat the boundary)."""
    last = ""
    for path in paths:
        if path.exists():
            frame = pd.read_csv(path, dtype={"date": str})
            newer = frame[frame["date"] > last]
            if len(frame):
                last = max(last, str(frame["date"].max()))
            yield from daily_events(path, symbol, start, end, newer)


def daily_events(
    path: Path,
    symbol: str,
    start: str | None,
    end: str | None,
    frame: pd.DataFrame | None = None,
) -> Iterator[TimedEvent]:
    """The daily bars of ``path`` (``frame``: its rows already read)."""
    if frame is None:
        frame = pd.read_csv(path, dtype={"date": str})
    if start:
        frame = frame[frame["date"] >= start]
    if end:
        frame = frame[frame["date"] <= end]
    source = f"file:{path.name}"
    order = rank("1d", symbol)
    for date_text, o, h, lo, c in _rows(frame[["date", "open", "high", "low", "close"]]):
        day = calendar.to_date(date_text)
        event_time = calendar.daily_close_time(day)
        values = (o, h, lo, c)
        if any(isinstance(v, float) and math.isnan(v) for v in values[:3]) and not math.isnan(c):
            # NSE published 0/blank open-high-low on a few VIX days: keep the close only.
            o = h = lo = c
        try:
            bar = Bar(
                symbol=symbol,
                interval="1d",
                open_time=calendar.daily_open_time(day),
                open=o,
                high=h,
                low=lo,
                close=c,
                source=source,
            )
        except ValueError as exc:
            raw = f"{path.name},{date_text},{o},{h},{lo},{c}".encode()
            yield event_time, order, RejectedInput(f"{date_text}: {exc}", raw)
            continue
        yield event_time, order, bar


def minute_events(path: Path, start: str | None, end: str | None) -> Iterator[TimedEvent]:
    frame = pd.read_csv(path)
    stamps = pd.to_datetime(frame["timestamp"])
    day_text = stamps.dt.strftime("%Y-%m-%d")
    mask = np.ones(len(frame), dtype=bool)
    if start:
        mask &= (day_text >= start).to_numpy()
    if end:
        mask &= (day_text <= end).to_numpy()
    frame = frame[mask]
    open_times = (stamps[mask].astype("int64") // 10**9).to_numpy()
    source = f"file:{path.name}"
    values = frame[["open", "high", "low", "close"]].to_numpy(dtype=float)
    order = rank("1m", "NIFTY")
    for t, (o, h, lo, c) in zip(open_times.tolist(), values.tolist(), strict=True):
        bar = Bar.model_construct(
            symbol="NIFTY",
            interval="1m",
            open_time=t,
            open=o,
            high=h,
            low=lo,
            close=c,
            volume=None,
            final=True,
            source=source,
        )
        yield t + 60, order, bar


class FileReplaySource:
    """The bundled CSVs as one event-ordered stream of bars."""

    name = "file"

    def __init__(
        self,
        data_dir: Path,
        window: ReplayWindow,
        speed: float = 0.0,
        paced_from: str | None = None,
        max_gap_s: float = 1.0,
        stop: threading.Event | None = None,
        resume_after_s: int | None = None,
    ) -> None:
        """``resume_after_s``: events up to this time were published by an earlier run, so
        they go as fast as possible (the bus skips them as duplicates) and pacing resumes
        where that run stopped."""
        self.data_dir = data_dir
        self.resume_after_s = resume_after_s
        self.window = window
        self.speed = speed
        self.paced_from_s = (
            calendar.daily_open_time(calendar.to_date(paced_from)) if paced_from else None
        )
        self.max_gap_s = max_gap_s
        self.stop = stop or threading.Event()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        stop: threading.Event | None = None,
        resume_after_s: int | None = None,
    ) -> FileReplaySource:
        window = ReplayWindow(
            settings.replay_daily_from, settings.replay_intraday_from, settings.replay_end
        )
        return cls(
            settings.data_dir,
            window,
            settings.replay_speed,
            settings.replay_paced_from,
            settings.replay_max_gap_s,
            stop,
            resume_after_s,
        )

    def _merged(self) -> Iterator[TimedEvent]:
        """Every stream merged by (event time, rank): at one event time the 1-minute bar
        ending at the close comes before that session's daily bars."""
        w = self.window
        streams = [
            daily_series_events([self.data_dir / f for f in files], sym, w.daily_from, w.end)
            for sym, files in DAILY_FILES.items()
        ]
        if w.include_intraday:  # disjoint periods in order: chained, still in time order
            streams.append(
                itertools.chain.from_iterable(
                    minute_events(self.data_dir / f, w.intraday_from, w.end)
                    for f in MINUTE_FILES
                    if (self.data_dir / f).exists()
                )
            )
        return heapq.merge(*streams, key=lambda e: (e[0], e[1]))

    def events(self) -> Iterator[Bar | RejectedInput]:
        previous_event: int | None = None
        for event_time, _, event in self._merged():
            if self.stop.is_set():
                return
            if self.is_paced(event_time) and previous_event is not None:
                wait = min((event_time - previous_event) / self.speed, self.max_gap_s)
                if wait > 0 and self.stop.wait(wait):
                    return
            previous_event = event_time
            yield event

    def is_paced(self, event_time: int) -> bool:
        """Whether the event at ``event_time`` is replayed at ``speed`` (not fast-forwarded)."""
        if self.resume_after_s is not None and event_time <= self.resume_after_s:
            return False
        return self.speed > 0 and (self.paced_from_s is None or event_time >= self.paced_from_s)

    def close(self) -> None:
        self.stop.set()

    @property
    def status(self) -> dict[str, object]:
        return {"source": self.name, "data_dir": str(self.data_dir)}


def iter_bars_fast(data_dir: Path, window: ReplayWindow) -> Iterator[Bar | RejectedInput]:
    """All bars of the window as fast as possible, in ``FileReplaySource`` order (tests)."""
    return FileReplaySource(data_dir, window).events()


__all__ = ["FileReplaySource", "ReplayWindow", "iter_bars_fast"]
