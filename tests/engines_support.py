"""Real-data inputs for the engine tests and bench: feature snapshots built from the bundled
daily history (as the features worker does live) and option chains from the chain file."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pandas as pd

from shared.config import PROJECT_ROOT
from shared.contract.schemas import FeatureSnapshot, OptionChain, OptionQuote
from shared.features.daily import compute_daily_features, sequence_window
from shared.features.history import load_history
from shared.features.intraday import IntradaySession
from shared.market import calendar

DATA_DIR = PROJECT_ROOT / "data"
CHAIN_FILE = DATA_DIR / "nifty_option_chain_intraday_2026-01-22_2026-02-05.csv.gz"


@lru_cache(maxsize=1)
def history() -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = load_history(DATA_DIR)
    return frame, compute_daily_features(frame)


def _clean(values: dict[str, float]) -> dict[str, float | None]:
    return {k: (None if v is None or not math.isfinite(v) else float(v)) for k, v in values.items()}


def daily_snapshot(day: str) -> FeatureSnapshot:
    """The daily snapshot at the close of session ``day`` (an existing row of the history)."""
    frame, features = history()
    i = features.index.get_loc(pd.Timestamp(day))
    row, prev = frame.iloc[i], frame.iloc[i - 1]
    d = features.index[i].date()
    expiry, dte, ste = calendar.days_to_expiry(d, at_close=True)
    seq = sequence_window(features.iloc[: i + 1])
    return FeatureSnapshot(
        kind="daily",
        as_of=calendar.daily_close_time(d),
        session_date=d.isoformat(),
        spot=float(row.close),
        prev_close=float(prev.close),
        vix=float(row.vix),
        vix_prev_close=float(prev.vix),
        vix_as_of=d.isoformat(),
        next_expiry=expiry.isoformat(),
        days_to_expiry=dte,
        sessions_to_expiry=ste,
        daily_as_of=d.isoformat(),
        daily=_clean(features.iloc[i].to_dict()),
        sequence=tuple(tuple(None if np.isnan(x) else float(x) for x in r) for r in seq),
    )


def intraday_snapshot(day: str, minutes: int, drift_points: float = 0.0) -> FeatureSnapshot:
    """An intraday snapshot of the session after ``day``, ``minutes`` into it; the bars walk
    linearly from the prior close by ``drift_points`` (enough to test breakout handling)."""
    base = daily_snapshot(day)
    session = calendar.sessions()[calendar.sessions().index(calendar.to_date(day)) + 1]
    high, low, close = _prior_hlc(day)
    state = IntradaySession(session.isoformat(), close, high, low, base.daily["atr_14"])
    start = calendar.daily_open_time(session)
    for m in range(minutes):
        price = close + drift_points * (m + 1) / minutes
        state.update(start + 60 * m, price, price + 1, price - 1, price)
    expiry, dte, ste = calendar.days_to_expiry(session, at_close=False)
    return base.model_copy(
        update={
            "kind": "intraday",
            "as_of": start + 60 * minutes,
            "session_date": session.isoformat(),
            "spot": state.last,
            "prev_close": close,
            "next_expiry": expiry.isoformat(),
            "days_to_expiry": dte,
            "sessions_to_expiry": ste,
            "intraday": state.features(),
            "sequence": None,
        }
    )


def _prior_hlc(day: str) -> tuple[float, float, float]:
    frame, _ = history()
    row = frame.loc[pd.Timestamp(day)]
    return float(row.high), float(row.low), float(row.close)


@lru_cache(maxsize=1)
def chain_frame() -> pd.DataFrame:
    return pd.read_csv(CHAIN_FILE)


def chains(limit: int | None = None) -> list[OptionChain]:
    """Option chains from the real chain file, one per (snapshot_ts, expiry), in time order."""
    out = []
    for (ts, expiry), rows in chain_frame().groupby(["snapshot_ts", "expiry"], sort=True):
        quotes = tuple(
            OptionQuote(
                strike=float(r.strike),
                ce_ltp=float(r.ce_ltp),
                ce_oi=float(r.ce_oi),
                pe_ltp=float(r.pe_ltp),
                pe_oi=float(r.pe_oi),
            )
            for r in rows.itertuples()
        )
        out.append(
            OptionChain(
                snapshot_time=int(pd.Timestamp(ts).timestamp()),
                expiry=expiry,
                spot=float(rows.spot.iloc[0]),
                quotes=quotes,
                source="test-file",
            )
        )
        if limit and len(out) >= limit:
            break
    return out
