"""Rolling per-symbol state of the features worker: bars in, feature snapshots out.

Pure (no Redis): the worker feeds bars, checkpoints ``to_checkpoint()`` with its outputs,
and restores with ``from_checkpoint`` after a restart. ``problems`` applies the shared
market-sanity rules against what this state last accepted; a bar is folded in only if it
passes, so a rejected bar moves no watermark. Every bar that yields nothing is counted
under a label in ``dropped``.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import asdict, replace
from typing import Any

import numpy as np
import pandas as pd

from services.features.sequencing import HeldBar
from shared.contract.schemas import Bar, FeatureSnapshot
from shared.features.daily import WINDOW_ROWS, compute_daily_features, sequence_window
from shared.features.intraday import IntradaySession
from shared.market import calendar, validation

INTRADAY_INTERVAL = "1m"
VIX_ROWS = WINDOW_ROWS + 10


class FeatureState:
    def __init__(self) -> None:
        self.nifty_daily: dict[str, tuple[float, float, float, float]] = {}
        self.vix_daily: dict[str, float] = {}
        self.last_seen: dict[str, tuple[int, int]] = {}  # series -> (open_time, revision)
        self.daily_features: dict[str, float | None] | None = None
        self.daily_as_of: str | None = None
        self.session: IntradaySession | None = None
        self.session_before_last_bar: IntradaySession | None = None
        self._context_cache: tuple[tuple[str, str], dict[str, Any]] | None = None
        self.accepted: validation.Accepted = {}  # series -> (open_time, close) last accepted
        self.last_seq: dict[str, int] = {}  # series -> bus sequence number last folded in
        self.dropped: dict[str, int] = {}  # label -> bars that produced nothing
        self.clock_s: int | None = None  # the newest bar applied, any series (sequencing)
        self.held: dict[str, HeldBar] = {}  # series -> a bar waiting for its next (sequencing)

    @property
    def duplicates(self) -> int:
        return self.dropped.get("duplicate", 0)

    def _drop(self, label: str) -> list[FeatureSnapshot]:
        self.dropped = {**self.dropped, label: self.dropped.get(label, 0) + 1}
        return []

    def problems(self, bar: Bar, now_s: float, limits: validation.Limits) -> list[str]:
        """Why ``bar`` must be rejected (empty when it may be applied)."""
        ref = validation.reference(self.accepted, bar)
        return validation.bar_problems(bar, now_s=now_s, limits=limits, reference=ref)

    def note_sequence(self, bar: Bar, seq: int | None) -> int:
        """Record a bar's bus sequence number; returns how many entries of its series are
        missing before it (0 when none: in order, or a redelivery)."""
        if seq is None:
            return 0
        series = f"{bar.symbol}:{bar.interval}"
        last = self.last_seq.get(series)
        if last is not None and seq <= last:
            return 0
        self.last_seq = {**self.last_seq, series: seq}
        return seq - last - 1 if last is not None else 0

    # Input ------------------------------------------------------------------------------
    def apply(self, bar: Bar, revision: int) -> list[FeatureSnapshot]:
        """Fold one bar in; returns the snapshots it produces (none for a duplicate).

        All or nothing: containers are replaced, never changed in place, so if anything
        raises, restoring the attribute references restores the state before the bar (a
        retried bar is then not mistaken for a duplicate).
        """
        series = f"{bar.symbol}:{bar.interval}"
        seen = self.last_seen.get(series)
        if seen is not None and (bar.open_time, revision) <= seen:
            label = "duplicate" if (bar.open_time, revision) == seen else "older_than_last"
            return self._drop(label)
        revises_last = seen is not None and bar.open_time == seen[0]
        before = dict(self.__dict__)
        try:
            if bar.interval == "1d":
                snapshots = self._apply_daily(bar)
            elif bar.symbol == "NIFTY" and bar.interval == INTRADAY_INTERVAL:
                snapshots = self._apply_minute(bar, revises_last)
            else:
                snapshots = self._drop("series_not_used")
            self.last_seen = {**self.last_seen, series: (bar.open_time, revision)}
            self.accepted = validation.accept(self.accepted, bar)
            self.clock_s = max(self.clock_s or 0, bar.open_time)
            return snapshots
        except Exception:
            self.__dict__.update(before)
            raise

    def _apply_daily(self, bar: Bar) -> list[FeatureSnapshot]:
        day = calendar.ist_date(bar.open_time).isoformat()
        self._context_cache = None
        if bar.symbol == "VIX":
            self.vix_daily = _trimmed({**self.vix_daily, day: bar.close}, VIX_ROWS)
            return []
        if not bar.final:  # daily features describe completed sessions only
            return self._drop("forming_daily_bar")
        self.nifty_daily = _trimmed(
            {**self.nifty_daily, day: (bar.open, bar.high, bar.low, bar.close)}, WINDOW_ROWS
        )
        features = compute_daily_features(self._daily_frame())
        self.daily_features = {k: _clean(v) for k, v in features.iloc[-1].items()}
        self.daily_as_of = day
        self.session = self.session_before_last_bar = None
        sequence = tuple(
            tuple(v if math.isfinite(v) else None for v in row)
            for row in sequence_window(features).tolist()
        )
        return [
            self._snapshot(
                "daily",
                calendar.daily_close_time(calendar.to_date(day)),
                day,
                spot=bar.close,
                sequence=sequence,
            )
        ]

    def _apply_minute(self, bar: Bar, revises_last: bool) -> list[FeatureSnapshot]:
        if self.daily_features is None or self.daily_as_of is None:
            return self._drop("minute_before_first_session")  # nothing anchors it yet
        day = calendar.ist_date(bar.open_time).isoformat()
        if day <= self.daily_as_of:
            return self._drop("minute_of_closed_session")  # its daily bar is already in
        if revises_last and self.session_before_last_bar is not None:
            base = self.session_before_last_bar
        elif self.session is None or self.session.session_date != day:
            _, h, lo, c = self.nifty_daily[self.daily_as_of]
            base = IntradaySession(
                session_date=day,
                prev_close=c,
                prior_high=h,
                prior_low=lo,
                atr_14=self.daily_features.get("atr_14"),
            )
        else:
            base = self.session
        session = replace(base)
        session.update(bar.open_time, bar.open, bar.high, bar.low, bar.close)
        self.session_before_last_bar, self.session = base, session
        return [
            self._snapshot(
                "intraday",
                bar.open_time + 60,
                day,
                spot=bar.close,
                intraday=session.features(),
            )
        ]

    # Output -----------------------------------------------------------------------------
    def _daily_frame(self) -> pd.DataFrame:
        days = list(self.nifty_daily)
        vix_days = sorted(self.vix_daily)
        vix_values = []
        for d in days:  # latest VIX close known on each NIFTY session
            i = bisect.bisect_right(vix_days, d) - 1
            vix_values.append(self.vix_daily[vix_days[i]] if i >= 0 else np.nan)
        ohlc = np.array(list(self.nifty_daily.values()), dtype=float)
        return pd.DataFrame(
            {
                "open": ohlc[:, 0],
                "high": ohlc[:, 1],
                "low": ohlc[:, 2],
                "close": ohlc[:, 3],
                "vix": vix_values,
            },
            index=pd.DatetimeIndex(np.array(days, dtype="datetime64[D]"), name="date"),
        )

    def _snapshot(
        self,
        kind: str,
        as_of: int,
        day: str,
        *,
        spot: float,
        sequence: Any = None,
        intraday: dict[str, float | None] | None = None,
    ) -> FeatureSnapshot:
        assert self.daily_as_of is not None and self.daily_features is not None
        return FeatureSnapshot(
            kind=kind,
            as_of=as_of,
            session_date=day,
            spot=spot,
            daily_as_of=self.daily_as_of,
            daily=self.daily_features,
            intraday=intraday,
            sequence=sequence,
            **self._context(kind, day),
        )

    def _context(self, kind: str, day: str) -> dict[str, Any]:
        """Previous closes, VIX and expiry as seen on ``day``: the same for every minute of a
        session, so cached until a daily bar changes them. A daily snapshot is taken at the
        close, so on an expiry day it already targets the next weekly expiry; the session's
        minutes target that day's (0 DTE)."""
        key = (kind, day)
        if self._context_cache is not None and self._context_cache[0] == key:
            return self._context_cache[1]
        nifty_days = list(self.nifty_daily)
        if kind == "daily":
            prev_close = self.nifty_daily[nifty_days[-2]][3] if len(nifty_days) > 1 else None
        else:
            assert self.daily_as_of is not None  # minutes are dropped before the first session
            prev_close = self.nifty_daily[self.daily_as_of][3]
        vix_days = sorted(self.vix_daily)
        i = bisect.bisect_right(vix_days, day)
        vix_as_of = vix_days[i - 1] if i > 0 else None
        expiry, days, sessions = calendar.days_to_expiry(
            calendar.to_date(day), at_close=kind == "daily"
        )
        context = {
            "prev_close": prev_close,
            "vix": self.vix_daily[vix_as_of] if vix_as_of else None,
            "vix_prev_close": self.vix_daily[vix_days[i - 2]] if i > 1 else None,
            "vix_as_of": vix_as_of,
            "next_expiry": expiry.isoformat(),
            "days_to_expiry": days,
            "sessions_to_expiry": sessions,
        }
        self._context_cache = (key, context)
        return context

    # Checkpoint -------------------------------------------------------------------------
    def to_checkpoint(self) -> dict[str, Any]:
        return {
            "nifty_daily": {k: list(v) for k, v in self.nifty_daily.items()},
            "vix_daily": self.vix_daily,
            "last_seen": {k: list(v) for k, v in self.last_seen.items()},
            "accepted": [[s, i, t, c] for (s, i), (t, c) in self.accepted.items()],
            "last_seq": self.last_seq,
            "dropped": self.dropped,
            "daily_features": self.daily_features,
            "daily_as_of": self.daily_as_of,
            "session": asdict(self.session) if self.session else None,
            "session_before_last_bar": (
                asdict(self.session_before_last_bar) if self.session_before_last_bar else None
            ),
            "clock_s": self.clock_s,
            "held": {k: v.to_checkpoint() for k, v in self.held.items()},
        }

    @classmethod
    def from_checkpoint(cls, data: dict[str, Any]) -> FeatureState:
        state = cls()
        state.nifty_daily = {k: tuple(v) for k, v in data["nifty_daily"].items()}
        state.vix_daily = dict(data["vix_daily"])
        state.last_seen = {k: (v[0], v[1]) for k, v in data["last_seen"].items()}
        state.accepted = {(s, i): (t, c) for s, i, t, c in data.get("accepted", [])}
        state.last_seq = dict(data.get("last_seq", {}))
        state.dropped = dict(data.get("dropped", {}))
        state.daily_features = data["daily_features"]
        state.daily_as_of = data["daily_as_of"]
        state.session = IntradaySession(**data["session"]) if data["session"] else None
        before = data["session_before_last_bar"]
        state.session_before_last_bar = IntradaySession(**before) if before else None
        state.clock_s = data.get("clock_s")
        state.held = {k: HeldBar.from_checkpoint(v) for k, v in data.get("held", {}).items()}
        return state


def _trimmed(table: dict[str, Any], rows: int) -> dict[str, Any]:
    """The newest ``rows`` entries (dicts keep insertion order: oldest first)."""
    return table if len(table) <= rows else dict(list(table.items())[-rows:])


def _clean(value: Any) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None
