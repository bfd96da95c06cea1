"""Positioning inputs for the direction forecast and the correction that adds them to a core
fitted on the long history.

Inputs, each as known at the session's close, through the functions the live path uses:
the FII index-futures and index-option nets and their change from the previous report
(``shared.signals.positioning``), the near-month future's basis (``read_futures``), both
from the previous session's reports (NSE publishes them in the evening, so a close's block
sees the previous session's at the newest), and the nearest expiry's log put-call OI ratio
and its change from the previous session (``shared.features.option_chain``; no change across
an expiry, where the nearest contract changes).

The correction: a ridge multinomial logit on the core's two log-odds (up and down against
neutral) and the inputs, fitted on the covered sessions whose label had settled before the
refit, refitted every ``REFIT_EVERY`` covered sessions once ``MIN_TRAINING`` such sessions
exist. The covered span (participants from 2024-09, the chain from 2023-08) is a few hundred
sessions: too few for a separate model over ~40 features, enough for a few weights on top of
the core, which keeps forecasting alone before the inputs exist.
"""

from __future__ import annotations

import bisect
import math
from pathlib import Path

import numpy as np
import pandas as pd

from services.ingest.sources.participant_oi import load_participant_oi
from services.ingest.sources.positioning_file import read_futures
from services.trainer.direction_logistic import Standardiser, fit_multinomial, softmax
from shared.contract.schemas import FuturesDay
from shared.features.option_chain import from_history
from shared.signals.positioning import positioning

CHAIN_INPUTS = ("log_pcr", "log_pcr_change")
PARTICIPANT_INPUTS = (
    "fii_futures_net",
    "fii_futures_change",
    "fii_options_net",
    "fii_options_change",
    "basis_pct",
)
VARIANTS: dict[str, tuple[str, ...]] = {
    "core recalibrated (no positioning input)": (),
    "core + PCR and its change (chain, from 2023-08)": CHAIN_INPUTS,
    "core + FII nets and changes, basis, PCR and its change (from 2024-09)": (
        *CHAIN_INPUTS,
        *PARTICIPANT_INPUTS,
    ),
}
REFIT_EVERY = 21
MIN_TRAINING = 150
C = 0.1  # fixed before the run: a few standardised inputs on a few hundred rows


def chain_inputs(dates: pd.DatetimeIndex, chain_csv: Path) -> pd.DataFrame:
    rows = pd.read_csv(chain_csv, parse_dates=["date"]).set_index("date").sort_index()
    summaries = [from_history(r) for r in rows.reset_index().to_dict("records")]
    log_pcr = np.array([math.log(s.pcr_oi) if s.pcr_oi else math.nan for s in summaries])
    expiry = rows["oc_is_expiry"].to_numpy() == 1
    change = np.full(len(rows), math.nan)
    change[1:] = np.where(expiry[1:] | expiry[:-1], math.nan, np.diff(log_pcr))
    out = pd.DataFrame({"log_pcr": log_pcr, "log_pcr_change": change}, index=rows.index)
    return out.reindex(dates)


def participant_inputs(
    dates: pd.DatetimeIndex, participants_path: Path, futures_csv: Path
) -> pd.DataFrame:
    """Per session: the FII nets, their changes and the basis from the reports of sessions
    before it (the newest such report)."""
    days = load_participant_oi(participants_path)
    futures = [f for f in read_futures(futures_csv) if isinstance(f, FuturesDay)]
    day_keys = [d.day for d in days]
    future_keys = [f.session_date for f in futures]
    out = []
    for t in dates:
        i = bisect.bisect_left(day_keys, t.date())  # reports of earlier sessions: days[:i]
        k = bisect.bisect_left(future_keys, f"{t:%Y-%m-%d}")
        row = dict.fromkeys(PARTICIPANT_INPUTS, math.nan)
        if i > 0:
            held = positioning(days[max(0, i - 6) : i], "fii")
            for name, series in (("futures", held.index_futures), ("options", held.index_options)):
                if series is not None:
                    row[f"fii_{name}_net"] = series.value
                    row[f"fii_{name}_change"] = math.nan if series.change is None else series.change
        basis = futures[k - 1].basis_pct if k > 0 else None
        if basis is not None:
            row["basis_pct"] = basis
        out.append(row)
    return pd.DataFrame(out, index=dates)


def log_odds(probs: np.ndarray) -> np.ndarray:
    """(n, 2): ln(p_up / p_neutral), ln(p_down / p_neutral)."""
    p = np.clip(probs, 1e-6, 1)
    return np.log(p[:, [0, 2]] / p[:, [1]])


def corrected(
    core: np.ndarray,
    inputs: np.ndarray,
    labels: np.ndarray,
    positions: np.ndarray,
    horizon: int,
) -> np.ndarray:
    """Walk-forward forecasts of the correction on covered rows (in time order): ``core``
    (n, 3) probabilities, ``inputs`` (n, k), ``labels`` (n,) class or NaN, ``positions`` (n,)
    the rows' session numbers. A row trains a refit at ``start`` only if its label's last
    session (position + horizon) is before ``start``'s session. NaN until ``MIN_TRAINING``."""
    x = np.column_stack([log_odds(core), inputs])
    out = np.full(core.shape, np.nan)
    for start in range(0, len(x), REFIT_EVERY):
        past = (positions + horizon < positions[start]) & ~np.isnan(labels)
        past[start:] = False
        if past.sum() < MIN_TRAINING or len(np.unique(labels[past])) < 3:
            continue
        scale = Standardiser.fit(x[past])
        coef, intercept = fit_multinomial(scale(x[past]), labels[past], C)
        block = slice(start, start + REFIT_EVERY)
        out[block] = softmax(scale(x[block]) @ coef.T + intercept)
    return out
