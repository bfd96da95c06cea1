"""One event order for every bar source.

Bars sort by event time (``pacing.event_time``: a bar's end, a daily bar's session close).
At one event time intraday bars come before daily ones: a session's last minute ends at the
close, when its daily bar happens too, and the features worker ignores minutes of a session
whose daily bar is already in. Among daily bars VIX comes before NIFTY, so the daily
snapshot (made on the NIFTY bar) sees that day's VIX.
"""

from __future__ import annotations

from services.ingest.sources.pacing import event_time
from shared.contract.schemas import Bar

INTERVAL_ORDER = {"1m": 0, "5m": 1, "1d": 2}
SYMBOL_ORDER = {"VIX": 0, "NIFTY": 1}

Rank = tuple[int, int]


def rank(interval: str, symbol: str) -> Rank:
    """Tie-break between bars of one event time (lower goes first)."""
    return INTERVAL_ORDER[interval], SYMBOL_ORDER[symbol]


def event_order(bar: Bar) -> tuple[int, int, int]:
    """Sort key putting bars in the order they became known."""
    return (event_time(bar), *rank(bar.interval, bar.symbol))
