"""The health of a polled feed, as the ingest service reports it in /health."""
from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field, fields
from typing import Any, Literal

FeedState = Literal["starting", "ok", "retrying", "failing", "stale", "closed"]


@dataclass
class FeedStatus:
    """Mutable, lock-protected; read it with ``snapshot()`` (JSON-ready, epoch seconds)."""

    state: FeedState = "starting"
    last_success_at: float | None = None
    last_attempt_at: float | None = None
    consecutive_failures: int = 0
    last_error: str | None = None
    rate_limited: bool = False
    stale_series: list[str] = field(default_factory=list)
    next_poll_at: float | None = None
    series: dict[str, dict[str, Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def update(self, **changes: Any) -> None:
        with self._lock:
            for name, value in changes.items():
                setattr(self, name, value)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                f.name: copy.deepcopy(getattr(self, f.name))
                for f in fields(self) if f.name != "_lock"
            }
