"""Direction candidates are scored honestly: positioning inputs are those known at the close,
the correction never trains on a label that had not settled, the candidate's forecasts line
up with the current model's rows, and the gate needs both the intervals and the sample."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from services.trainer import direction_candidates as dc
from services.trainer import direction_positioning as dp
from services.trainer.chain_evaluation import load_runs
from services.trainer.data import load_training_data
from shared.models.api import DIRECTION_CLASSES

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
PARTICIPANTS = DATA / "nse_participant_oi_daily_2024-09_2026-02.csv"
FUTURES = DATA / "nifty_futures_daily_2024-09_2026-02.csv"
CHAIN = DATA / "nifty_chain_features_daily_2023-08_2026-02.csv"


def test_participant_inputs_are_the_previous_sessions_reports() -> None:
    history = pd.read_csv(PARTICIPANTS, parse_dates=["date"])
    futures = pd.read_csv(FUTURES, parse_dates=["date"])
    dates = pd.DatetimeIndex(history["date"].iloc[[0, 1, 2, 200, -1]])
    inputs = dp.participant_inputs(dates, PARTICIPANTS, FUTURES)
    assert inputs.iloc[0].isna().all()  # nothing known before the first report
    assert inputs.iloc[1]["fii_futures_net"] == history["fii_index_future_net"].iloc[0]
    assert math.isnan(inputs.iloc[1]["fii_futures_change"])  # one record: no change yet
    for i, row in zip((2, 200, len(history) - 1), inputs.iloc[2:].itertuples(), strict=True):
        net = history["fii_index_future_net"]
        options = history["fii_index_option_direction"]
        assert row.fii_futures_net == net.iloc[i - 1]
        assert row.fii_futures_change == net.iloc[i - 1] - net.iloc[i - 2]
        assert row.fii_options_change == options.iloc[i - 1] - options.iloc[i - 2]
        before = futures[futures["date"] < history["date"].iloc[i]].iloc[-1]
        assert row.basis_pct == before["future_basis_pct"]


def test_the_pcr_change_is_left_out_across_an_expiry() -> None:
    chain = pd.read_csv(CHAIN, parse_dates=["date"]).set_index("date")
    inputs = dp.chain_inputs(pd.DatetimeIndex(chain.index), CHAIN)
    expiry = chain["oc_is_expiry"].to_numpy() == 1
    after_expiry = np.r_[False, expiry[:-1]]
    change = inputs["log_pcr_change"].to_numpy()
    assert np.isnan(change[expiry | after_expiry]).all()
    ordinary = ~(expiry | after_expiry)
    ordinary[0] = False
    expected = np.diff(np.log(chain["oc_pcr_oi"].to_numpy()))[ordinary[1:]]
    np.testing.assert_allclose(change[ordinary], expected)


def test_the_correction_never_trains_on_a_label_not_yet_settled() -> None:
    rng = np.random.default_rng(1)
    n, horizon = 400, 5
    core = rng.dirichlet([4, 2, 4], n)
    inputs = rng.normal(size=(n, 3))
    labels = rng.integers(0, 3, n).astype(float)
    positions = np.arange(n) * 2  # covered sessions need not be consecutive
    before = dp.corrected(core, inputs, labels, positions, horizon)
    start = 5 * dp.REFIT_EVERY
    unsettled = positions + horizon >= positions[start]
    altered = labels.copy()
    altered[unsettled] = (labels[unsettled] + 1) % 3
    after = dp.corrected(core, inputs, altered, positions, horizon)
    block = slice(start, start + dp.REFIT_EVERY)
    np.testing.assert_array_equal(before[block], after[block])
    assert np.isnan(before[: dp.REFIT_EVERY * 3]).all()  # fewer than MIN_TRAINING rows
    assert not np.allclose(before[start + dp.REFIT_EVERY :], after[start + dp.REFIT_EVERY :])


def test_the_gate_needs_the_sample_and_every_interval_above_zero() -> None:
    above, touching = {"interval": [0.001, 0.01]}, {"interval": [0.0, 0.01]}
    assert dc.verdict(1700, "t1", [above, above])["passes"]
    assert not dc.verdict(1700, "t1", [above, touching])["passes"]
    assert not dc.verdict(249, "t1", [above, above])["passes"]  # 24 blocks, 249 sessions
    short = dc.verdict(790, "t40", [above, above])  # 19 blocks of 40
    assert not short["passes"] and short["blocks"] == 19


def test_candidate_forecasts_line_up_with_the_current_models_rows() -> None:
    full = load_training_data(
        [DATA / "nifty50_daily.csv", DATA / "nifty50_daily_2025-07_2026-02.csv"],
        [DATA / "india_vix_daily.csv", DATA / "india_vix_daily_2025-07_2026-02.csv"],
        None,
    )
    current = load_runs([ROOT / "docs" / "evaluation" / "later"], ("direction",))["direction"]
    current = current[current["fold_train_end"] == "2025-12-31"]
    table, folds = dc.fold_forecasts(full, current)
    assert [f["train_end"] for f in folds] == ["2025-12-31"]
    merged = table.merge(current, on=["date", "horizon"])
    assert len(merged) == len(table) == len(current)
    for c in DIRECTION_CLASSES:
        np.testing.assert_allclose(merged[f"current_{c}"], merged[f"p_{c}"])
    labelled = merged.dropna(subset=["actual"])
    assert (labelled["label"].map(dict(enumerate(DIRECTION_CLASSES))) == labelled["actual"]).all()
    assert merged.loc[merged["actual"].isna(), "label"].isna().all()
    for _, g in table.groupby("horizon"):
        shipped = g[[f"shipped_{c}" for c in DIRECTION_CLASSES]].to_numpy()
        if not g["live"].iloc[0]:  # a failed horizon ships the window's climatology exactly
            np.testing.assert_array_equal(shipped, g[[f"clim_{c}" for c in DIRECTION_CLASSES]])
        np.testing.assert_allclose(shipped.sum(1), 1)
