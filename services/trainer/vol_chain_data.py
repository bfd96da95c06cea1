"""The sessions the chain inputs are tried on: the walk-forward runs' volatility forecasts where
the option chain's daily history holds the forecasts' expiry, with the chain's inputs as the
live path computes them (``shared.features.option_chain``) and the previous session's futures
and participant reports.

One row per session (``sessions``): the target (``r`` = ln(C_expiry/C_t)), the core's forecasts
and the signals as shipped today (the run's ``live_*`` choice: the core or its baseline), the
VIX and straddle baselines' inputs and the chain, futures and participant inputs. One row per
(session, strike) for the breach curve (``strikes``).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from services.ingest.sources.positioning_file import read_futures
from services.trainer.chain_evaluation import load_runs
from services.trainer.direction_positioning import participant_inputs
from shared.contract.schemas import FuturesDay
from shared.features.option_chain import from_history, model_inputs, straddle_iv, straddle_sigma

SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
CHAIN_INPUTS = ("log_pcr", "put_wall_per_straddle", "call_wall_per_straddle")
MARKET_INPUTS = ("basis_pct", "futures_oi_change", "fii_futures_net", "fii_options_net")


@dataclass(frozen=True)
class ChainSessions:
    sessions: pd.DataFrame  # one row per session, in date order
    strikes: pd.DataFrame  # one row per (session, strike on the 0.5..3 % grid, side)


def chain_rows(chain_csv: Path, vix: pd.Series, forecast_vol: pd.Series) -> pd.DataFrame:
    """Per chain-history day that is not an expiry day: its expiry and the straddle's move,
    sigma and implied vol, and the chain's model inputs (``model_inputs``, the live path's
    function) with the wall distances per straddle move. ``vix`` and ``forecast_vol`` are
    indexed by date."""
    history = pd.read_csv(chain_csv, parse_dates=["date"])
    history = history[history["oc_is_expiry"] == 0]
    out = []
    for row in history.to_dict("records"):
        date = row["date"]
        if date not in vix.index:
            continue
        summary = from_history(row)
        inputs = model_inputs(summary, float(vix[date]), float(forecast_vol[date]))
        move = (summary.straddle_pct or math.nan) / 100
        out.append(
            {
                "date": date,
                "chain_expiry": date + pd.Timedelta(days=summary.days_to_expiry),
                "straddle_move": move,
                "straddle_sigma": straddle_sigma(summary) or math.nan,
                "straddle_iv": straddle_iv(summary) or math.nan,
                "term_gap": inputs.get("term_gap", math.nan),
                "log_pcr": inputs.get("log_pcr", math.nan),
                "put_wall_per_straddle": inputs.get("put_wall_dist_pct", math.nan) / 100 / move,
                "call_wall_per_straddle": inputs.get("call_wall_dist_pct", math.nan) / 100 / move,
            }
        )
    return pd.DataFrame(out)


def futures_oi_change(dates: pd.DatetimeIndex, futures_csv: Path) -> pd.Series:
    """ln of the near-month future's OI against the day before, from the newest report of a
    session before each date (NSE publishes it in the evening)."""
    days = [f for f in read_futures(futures_csv) if isinstance(f, FuturesDay)]
    keys = [f.session_date for f in days]
    out = []
    for t in dates:
        k = bisect.bisect_left(keys, f"{t:%Y-%m-%d}")
        f = days[k - 1] if k > 0 else None
        before = None if f is None or f.oi_change_units is None else f.oi_units - f.oi_change_units
        out.append(math.log(f.oi_units / before) if f and before and before > 0 else math.nan)
    return pd.Series(out, index=dates, name="futures_oi_change")


def market_rows(dates: pd.DatetimeIndex, participants: Path, futures_csv: Path) -> pd.DataFrame:
    """The futures basis and OI change and the FII nets known at each date's close."""
    held = participant_inputs(dates, participants, futures_csv)
    held["futures_oi_change"] = futures_oi_change(dates, futures_csv)
    return held[list(MARKET_INPUTS)].rename_axis("date").reset_index()


def _signals_as_shipped(g: pd.DataFrame) -> pd.DataFrame:
    """Each signal as the engine published it in the run: the core where the fold chose it."""
    model = {k: g[f"live_{k}"] == "model" for k in ("trap", "stress", "move", "expiry_range")}
    return g.assign(
        vix_move=g["implied_move"] * SQRT_2_OVER_PI,
        shipped_move=lambda x: np.where(model["move"], x["predicted_move"], x["vix_move"]),
        shipped_lower=np.where(model["expiry_range"], g["safe_lower"], g["vix_lower"]),
        shipped_upper=np.where(model["expiry_range"], g["safe_upper"], g["vix_upper"]),
        shipped_trap=np.where(model["trap"], g["trap_probability"], g["trap_base_rate"]),
        shipped_stress=np.where(model["stress"], g["stress_score"], g["stress_score_baseline"]),
    )


def load_sessions(
    runs: Sequence[Path],
    chain_csv: Path,
    participants: Path,
    futures_csv: Path,
    end: str | None = None,
) -> ChainSessions:
    """The sessions (on or before ``end`` if given) and their strike rows."""
    tables = load_runs(runs)
    seller = tables["seller"]
    if end is not None:
        seller = seller[seller["date"] <= pd.Timestamp(end)]
    buyer = tables["buyer"][["date", "predicted_move", "implied_move"]]
    g = seller.merge(buyer, on="date")
    indexed = g.set_index("date")
    chain = chain_rows(chain_csv, indexed["vix"], indexed["vol_forecast"])
    g = g.merge(chain, on="date")
    g = g[pd.to_datetime(g["expiry"]) == g["chain_expiry"]]
    g = g.dropna(subset=["expiry_close", "straddle_move", "predicted_move"])
    g = _signals_as_shipped(g.sort_values("date").reset_index(drop=True))
    dates = pd.DatetimeIndex(g["date"])
    g = g.merge(market_rows(dates, participants, futures_csv), on="date", how="left")
    g = g.assign(
        r=np.log(g["expiry_close"] / g["spot"]),
        core_logit=np.log(g["trap_probability"] / (1 - g["trap_probability"])),
    )
    strikes = tables["breach"].merge(g[["date", "live_expiry_range", "straddle_sigma"]], on="date")
    strikes = strikes.dropna(subset=["breached"]).sort_values(["date", "side", "strike_pct"])
    sign = np.where(strikes["side"] == "above", 1.0, -1.0)
    strikes = strikes.assign(log_strike=np.log1p(sign * strikes["strike_pct"] / 100))
    return ChainSessions(g, strikes.reset_index(drop=True))
