"""Intraday features of the current NIFTY session, updated one 1-minute bar at a time.

The trainer runs the same ``IntradaySession`` over the recorded 1-minute history, so live
and training features are one implementation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from shared.market.calendar import SESSION_MINUTES, TRADING_DAYS_PER_YEAR, minute_of_session

INTRADAY_FEATURE_NAMES: tuple[str, ...] = (
    "minute_of_session",
    "session_open",
    "session_high",
    "session_low",
    "last",
    "return_since_open",
    "return_since_prev_close",
    "intraday_rv",
    "range_vs_atr",
    "prior_high",
    "prior_low",
    "breakout_up",
    "breakout_down",
    "bars",
)

BREAKOUT_ATR_FRACTION = 0.25


@dataclass
class IntradaySession:
    """Rolling state of one session. ``prior_*`` and ``atr_14`` come from the last daily row."""

    session_date: str
    prev_close: float | None
    prior_high: float | None
    prior_low: float | None
    atr_14: float | None
    open: float = math.nan
    high: float = -math.inf
    low: float = math.inf
    last: float = math.nan
    bars: int = 0
    sum_sq_returns: float = 0.0
    minute: int = 0

    def update(self, open_time: int, o: float, h: float, lo: float, c: float) -> None:
        if self.bars == 0:
            self.open = o
        else:
            r = math.log(c / self.last)
            self.sum_sq_returns += r * r
        self.high = max(self.high, h)
        self.low = min(self.low, lo)
        self.last = c
        self.bars += 1
        self.minute = minute_of_session(open_time)

    def features(self) -> dict[str, float | None]:
        atr = self.atr_14 if self.atr_14 and self.atr_14 > 0 else None
        rv = (
            math.sqrt(
                self.sum_sq_returns / (self.bars - 1) * SESSION_MINUTES * TRADING_DAYS_PER_YEAR
            )
            if self.bars > 1
            else None
        )
        threshold = BREAKOUT_ATR_FRACTION * atr if atr else None

        def broke(level: float | None, beyond: float, sign: int) -> float | None:
            if level is None or threshold is None:
                return None
            return 1.0 if sign * (beyond - level) >= threshold else 0.0

        return {
            "minute_of_session": float(self.minute),
            "session_open": self.open,
            "session_high": self.high,
            "session_low": self.low,
            "last": self.last,
            "return_since_open": math.log(self.last / self.open),
            "return_since_prev_close": (
                math.log(self.last / self.prev_close) if self.prev_close else None
            ),
            "intraday_rv": rv,
            "range_vs_atr": (self.high - self.low) / atr if atr else None,
            "prior_high": self.prior_high,
            "prior_low": self.prior_low,
            "breakout_up": broke(self.prior_high, self.high, +1),
            "breakout_down": broke(self.prior_low, self.low, -1),
            "bars": float(self.bars),
        }
