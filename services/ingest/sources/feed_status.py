"""The health of a polled feed, as the ingest service reports it in /health."""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

FeedState = Literal["starting", "ok", "retrying", "failing", "stale", "closed"]
# States in which the feed delivers what it can: waiting for the first poll, fine, or the
# market is closed. Anything else (retrying, failing, stale) is a degraded feed.
HEALTHY_STATES: frozenset[str] = frozenset({"starting", "ok", "closed"})


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
    failed_series: list[str] = field(default_factory=list)
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
                for f in fields(self)
                if f.name != "_lock"
            }


def feed_problem(status: Mapping[str, Any]) -> str | None:
    """Why a feed (a ``FeedStatus.snapshot()``) is not healthy, or None when it is.

    A status without a ``state`` (a file source's) is healthy. A rate-limited feed, or one
    whose last fetch failed, is degraded even while its state says the market is closed."""
    state = status.get("state")
    if state is None:
        return None
    rate_limited = bool(status.get("rate_limited"))
    failures = int(status.get("consecutive_failures") or 0)
    if state in HEALTHY_STATES and not rate_limited and not failures:
        return None
    parts = [f"feed {state}"]
    if rate_limited:
        parts.append("rate limited")
    if failures:
        parts.append(f"{failures} consecutive failures")
    for key in ("failed_series", "stale_series"):
        if status.get(key):
            parts.append(f"{key.split('_')[0]} {', '.join(status[key])}")
    return "; ".join(parts) + f"; last error: {status.get('last_error') or 'none'}"
