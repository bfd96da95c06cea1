"""Scoring against the straddle joins the right rows: the walk-forward's expiry is the chain
history's on every day but expiry days, a later run replaces an earlier one date by date, and
the intervals resample whole expiries."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from services.trainer import chain_evaluation as ce

ROOT = Path(__file__).resolve().parents[1]
CHAIN = ROOT / "data" / "nifty_chain_features_daily_2023-08_2026-02.csv"
RUNS = [ROOT / "docs" / "evaluation", ROOT / "docs" / "evaluation" / "later"]


def test_the_forecasts_expiry_is_the_chain_historys_on_every_other_day() -> None:
    seller = ce.load_runs(RUNS)["seller"]
    history = pd.read_csv(CHAIN, parse_dates=["date"])
    both = seller.merge(history, on="date")
    ordinary = both[both["oc_is_expiry"] == 0]
    chain_expiry = ordinary["date"] + pd.to_timedelta(ordinary["oc_dte_actual"], unit="D")
    assert len(ordinary) > 450
    assert (pd.to_datetime(ordinary["expiry"]) == chain_expiry).all()
    # on an expiry day the history holds the expiring contract: not the forecasts' expiry
    expiry_days = seller[seller["date"].isin(both.loc[both["oc_is_expiry"] == 1, "date"])]
    assert len(expiry_days) > 100
    assert ce.with_chain(expiry_days, ce.load_chain(CHAIN)).empty


def test_a_later_run_replaces_an_earlier_one_date_by_date(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    for folder, dates, value in ((old, ["2024-01-01", "2024-01-02"], 1), (new, ["2024-01-02"], 2)):
        folder.mkdir()
        for name in ce.TABLES:
            pd.DataFrame({"date": dates, "v": value}).to_csv(folder / f"{name}.csv", index=False)
    seller = ce.load_runs([old, new])["seller"].set_index("date")["v"]
    assert seller.to_dict() == {pd.Timestamp("2024-01-01"): 1, pd.Timestamp("2024-01-02"): 2}


def test_intervals_resample_whole_expiries() -> None:
    # one expiry of a single 0 and one of three 1s: resampling expiries gives means 0, 0.75
    # or 1 (a quarter of draws all 0); resampling rows would almost never give 0
    g = pd.DataFrame({"expiry": ["a", "b", "b", "b"], "x": [0.0, 1.0, 1.0, 1.0]})
    assert ce.interval(g, lambda d: float(d["x"].mean())) == [0.0, 1.0]
