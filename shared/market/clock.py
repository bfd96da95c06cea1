"""Time for stamps (computed_at, generated_at) and staleness.

``WallClock`` is real time. ``EventClock`` is the time of the newest event seen, so a replay
of the same input gives the same stamps and the same document, byte for byte. ``RunClock``
is the gateway's clock: wall time live, and in a replay the stream's own time, as ingest
reports it in ``RunInfo`` (the newest event published, moving on at the replay speed while
the replay is paced), so a replayed minute is judged fresh or stale in replayed time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from shared.market import calendar


class Clock(Protocol):
    def now_ms(self) -> int: ...

    def observe(self, event_time_s: int) -> None: ...


class WallClock:
    def now_ms(self) -> int:
        return int(time.time() * 1000)

    def observe(self, event_time_s: int) -> None:
        return None


class EventClock:
    def __init__(self) -> None:
        self._latest_ms = 0

    def now_ms(self) -> int:
        return self._latest_ms

    def observe(self, event_time_s: int) -> None:
        self._latest_ms = max(self._latest_ms, event_time_s * 1000)


@dataclass(frozen=True)
class RunInfo:
    """What the feed is doing, as ingest publishes it (Redis key ``aegis:run``)."""

    mode: Literal["live", "replay"]
    source: str
    speed: float  # replayed seconds per wall second while paced; 0 = as fast as possible
    paced: bool  # the replay is waiting between events right now (not fast-forwarding)
    stream_time_s: int | None  # event time of the newest bar published
    stream_at_ms: int  # wall time when that bar was published
    finished: bool

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> RunInfo:
        """Raises ValueError with the reason for a malformed record."""
        try:
            mode = raw["mode"]
            if mode not in ("live", "replay"):
                raise ValueError(f"mode {mode!r} is not live or replay")
            stream = raw.get("stream_time_s")
            return cls(
                mode=mode,
                source=str(raw.get("source", "")),
                speed=float(raw.get("speed") or 0.0),
                paced=bool(raw.get("paced")),
                stream_time_s=None if stream is None else int(stream),
                stream_at_ms=int(raw["stream_at_ms"]),
                finished=bool(raw.get("finished")),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"run record lacks or mistypes a field: {exc}") from exc


class RunClock:
    """Wall time until a replay's ``RunInfo`` arrives; then the replay's time: the newest
    published event time, plus wall time since then times the speed while the replay is
    paced. A replay that stops reporting keeps moving (so its blocks go stale: the feed is
    down); a finished or fast-forwarding replay stands at its newest event."""

    def __init__(self, wall_ms: Callable[[], int] | None = None) -> None:
        self._wall_ms = wall_ms or (lambda: int(time.time() * 1000))
        self.run: RunInfo | None = None

    def set_run(self, run: RunInfo | None) -> None:
        self.run = run

    def replaying(self) -> bool:
        run = self.run
        return run is not None and run.mode == "replay" and run.stream_time_s is not None

    def rate(self) -> float:
        """Clock seconds per wall second from now on."""
        if not self.replaying():
            return 1.0
        run = self.run
        assert run is not None
        return run.speed if run.paced and not run.finished and run.speed > 0 else 0.0

    def now_ms(self) -> int:
        wall = self._wall_ms()
        run = self.run
        if run is None or not self.replaying():
            return wall
        assert run.stream_time_s is not None
        return run.stream_time_s * 1000 + int(max(0, wall - run.stream_at_ms) * self.rate())

    def observe(self, event_time_s: int) -> None:
        return None

    def section(self) -> dict[str, Any]:
        """The document's ``clock``: what stale flags and ages are judged against."""
        now = self.now_ms()
        run = self.run
        replay = self.replaying()
        return {
            "mode": "replay" if replay else "live",
            "now": utc_iso_ms(now),
            "rate": self.rate(),
            "speed": run.speed if replay and run else None,
            "replay_date": str(calendar.ist_date(now // 1000)) if replay else None,
            "source": run.source if run else None,
            "finished": run.finished if replay and run else None,
            **market_hours(now),
        }


def event_section(clock: Clock) -> dict[str, Any]:
    """The ``clock`` section with the event clock: reproducible, so only the clock's time."""
    now = clock.now_ms()
    return {
        "mode": "event",
        "now": utc_iso_ms(now),
        "rate": 0.0,
        "speed": None,
        "replay_date": str(calendar.ist_date(now // 1000)) if now else None,
        "source": None,
        "finished": None,
        **market_hours(now),
    }


def clock_section(clock: Clock) -> dict[str, Any]:
    """The document's ``clock`` for any clock: a RunClock says itself, the event clock gives
    only its time (reproducible), the wall clock is live at rate 1."""
    if isinstance(clock, RunClock):
        return clock.section()
    if isinstance(clock, EventClock):
        return event_section(clock)
    now = clock.now_ms()
    return {
        "mode": "live",
        "now": utc_iso_ms(now),
        "rate": 1.0,
        "speed": None,
        "replay_date": None,
        "source": None,
        "finished": None,
        **market_hours(now),
    }


def market_hours(now_ms: int) -> dict[str, Any]:
    """Whether the NSE session is open at the clock's time, and when it next opens (null
    while open, or past the calendar's last session)."""
    moment = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
    if calendar.is_market_open(moment):
        return {"market_open": True, "next_open": None}
    today = calendar.ist_date(now_ms // 1000)
    try:
        opens_today = calendar.is_session(today) and moment < calendar.session_bounds(today)[0]
        day = today if opens_today else calendar.next_session(today)
    except ValueError:
        return {"market_open": False, "next_open": None}
    return {"market_open": False, "next_open": utc_iso_ms(calendar.daily_open_time(day) * 1000)}


def utc_iso_ms(epoch_ms: int) -> str:
    """Epoch milliseconds as ISO 8601 UTC with milliseconds: ``2025-06-30T10:00:00.000Z``
    (the document's stamps; market times shown in IST use ``calendar.ist_iso``)."""
    stamp = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def make_clock(kind: str) -> Clock:
    return EventClock() if kind == "event" else WallClock()
