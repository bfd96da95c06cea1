"""Turning yfinance history frames into ``Bar`` messages; bad rows become RejectedInput."""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

from services.ingest.sources.base import RejectedInput
from shared.contract.schemas import Bar, Interval, Symbol
from shared.market.calendar import IST, daily_open_time

TICKERS: dict[str, Symbol] = {"^NSEI": "NIFTY", "^INDIAVIX": "VIX"}
INTERVAL_MINUTES = {"1m": 1, "5m": 5}
PRICE_COLUMNS = ("Open", "High", "Low", "Close")


def _raw(ticker: str, interval: str, stamp: pd.Timestamp, row: pd.Series) -> bytes:
    values: dict[str, Any] = {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()
    }
    return json.dumps(
        {"ticker": ticker, "interval": interval, "time": stamp.isoformat(), **values},
        default=str,
    ).encode()


def _problem(prices: dict[str, float]) -> str | None:
    bad = [k for k, v in prices.items() if not math.isfinite(v)]
    if bad:
        return f"missing {', '.join(bad)}"
    if min(prices.values()) <= 0:
        return "non-positive price"
    o, h, lo, c = (prices[k] for k in PRICE_COLUMNS)
    if h < lo:
        return f"high {h} below low {lo}"
    if not (lo <= o <= h and lo <= c <= h):
        return f"open {o} or close {c} outside low..high {lo}..{h}"
    return None


def _open_time(stamp: pd.Timestamp, interval: Interval) -> int | None:
    """The bar's key, or None when an intraday stamp is not on the interval's grid."""
    local = stamp.tz_convert(IST)
    if interval == "1d":
        return daily_open_time(local.date())
    minutes = local.hour * 60 + local.minute - (9 * 60 + 15)
    if local.second or local.microsecond or minutes % INTERVAL_MINUTES[interval]:
        return None
    return int(local.timestamp())


def frame_to_bars(
    frame: pd.DataFrame, ticker: str, interval: Interval, source: str = "yfinance"
) -> list[Bar | RejectedInput]:
    """Every row of a history frame as a final Bar (the caller decides which is still
    forming), or a RejectedInput naming what is wrong with it, in index order."""
    symbol = TICKERS[ticker]
    if frame.empty:
        return []
    if not isinstance(frame.index, pd.DatetimeIndex) or frame.index.tz is None:
        raise ValueError(f"{ticker} {interval}: history index is not tz-aware datetimes")
    missing = set(PRICE_COLUMNS) - set(frame.columns)
    if missing:
        raise ValueError(f"{ticker} {interval}: history lacks columns {sorted(missing)}")
    out: list[Bar | RejectedInput] = []
    for stamp, row in frame.sort_index().iterrows():
        prices = {k: float(row[k]) for k in PRICE_COLUMNS}
        reason = _problem(prices)
        open_time = _open_time(stamp, interval)
        if reason is None and open_time is None:
            reason = f"time {stamp.isoformat()} is not on the {interval} grid"
        if reason is not None:
            out.append(
                RejectedInput(
                    f"yfinance {ticker} {interval} {stamp.isoformat()}: {reason}",
                    _raw(ticker, interval, stamp, row),
                )
            )
            continue
        volume = float(row["Volume"]) if "Volume" in row else math.nan
        out.append(
            Bar(
                symbol=symbol,
                interval=interval,
                open_time=open_time,
                open=prices["Open"],
                high=prices["High"],
                low=prices["Low"],
                close=prices["Close"],
                volume=volume if math.isfinite(volume) else None,
                source=source,
            )
        )
    return out
