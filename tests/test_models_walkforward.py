"""Walk-forward evaluation: outputs as documented, and altering the future never changes
a prediction made before it (the train/evaluation split does not leak)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from services.trainer.evaluation import run_evaluation
from shared.config import PROJECT_ROOT
from shared.models import registry

START, CHANGE_AT, END = "2019-09-01", "2020-02-14", "2020-06-30"
# a metric given inputs it warns about (e.g. probabilities that do not sum to one) fails
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("error::UserWarning")]


def _csvs(tmp: Path, alter_after: str | None) -> tuple[Path, Path]:
    paths = []
    for name in ("nifty50_daily.csv", "india_vix_daily.csv"):
        frame = pd.read_csv(PROJECT_ROOT / "data" / name)
        frame = frame[(frame["date"] >= "2016-01-01") & (frame["date"] <= END)].reset_index(
            drop=True
        )
        if alter_after:
            future = frame.index[frame["date"] > alter_after]
            rng = np.random.default_rng(3)
            cols = ["open", "high", "low", "close"]
            frame.loc[future, cols] = frame.loc[rng.permutation(future), cols].to_numpy() * 0.8
        path = tmp / name
        frame.to_csv(path, index=False)
        paths.append(path)
    return paths[0], paths[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for label, alter in (("original", None), ("altered", CHANGE_AT)):
        tmp = tmp_path_factory.mktemp(label)
        nifty, vix = _csvs(tmp, alter)
        # the original keeps its folds' models in a registry; the altered run does not, so
        # the predictions compared below also show that keeping them changes none
        wf = tmp / "registry" if alter is None else None
        run_evaluation(
            [nifty], [vix], START, tmp / "out", retrain_every=63, fast=True, registry_dir=wf
        )
        out[label] = tmp / "out"
    return out


def test_the_registry_holds_each_fold_valid_for_its_block(runs: dict[str, Path]) -> None:
    seller = pd.read_csv(runs["original"] / "seller.csv", dtype={"date": str})
    blocks = seller.groupby("fold_train_end")["date"].agg(["min", "max"])
    wf = runs["original"].parent / "registry"
    for name in ("direction", "seller", "buyer", "stats"):
        versions = registry.list_versions(wf, name)
        assert [
            (v["training_window"]["end"], v["valid_for"]["after"], v["valid_for"]["through"])
            for v in sorted(versions, key=lambda v: v["training_window"]["end"])
        ] == [(end, end, last) for end, last in zip(blocks.index, blocks["max"], strict=True)]
        for day, fold in zip(seller["date"], seller["fold_train_end"], strict=True):
            chosen = registry.valid_version(versions, day)
            assert chosen is not None and chosen.startswith(fold.replace("-", ""))


def test_outputs_and_metrics(runs: dict[str, Path]) -> None:
    out = runs["original"]
    for name in ("direction", "seller", "breach", "buyer"):
        assert (out / f"{name}.csv").stat().st_size > 0
    direction = pd.read_csv(out / "direction.csv")
    assert {"date", "horizon", "p_up", "p_neutral", "p_down", "actual", "clim_up"} <= set(direction)
    required = {  # the columns the evaluation command promises, in this order
        "direction": ["date", "horizon", "p_up", "p_neutral", "p_down"],
        "seller": [
            "date",
            "expiry",
            "spot",
            "safe_lower",
            "safe_upper",
            "coverage_target",
            "trap_probability",
            "stress_score",
        ],
        "breach": ["date", "expiry", "strike", "side", "probability"],
        "buyer": ["date", "breakout_probability", "spike_up_probability", "theta_edge_score"],
    }
    for name, columns in required.items():
        table = pd.read_csv(out / f"{name}.csv")
        assert list(table.columns[: len(columns)]) == columns, name
        assert table[columns].notna().all().all() or name == "buyer", name
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["direction"]) == {"t1", "t3", "t5", "t10", "t20", "t40"}
    for key in (
        "accuracy",
        "balanced_accuracy",
        "log_loss",
        "brier",
        "ece",
        "brier_skill_vs_climatology",
        "accuracy_majority",
    ):
        assert key in metrics["direction"]["t1"]
    assert 0 < metrics["safe_range"]["coverage"] <= 1
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "<script" not in html


def test_altering_the_future_does_not_change_earlier_predictions(runs: dict[str, Path]) -> None:
    cols = {
        "direction": ["p_up", "p_neutral", "p_down"],
        "seller": ["trap_probability", "stress_score", "safe_lower", "safe_upper"],
        "breach": ["probability"],
        "buyer": ["breakout_probability", "spike_up_probability", "theta_edge_score"],
    }
    for name, columns in cols.items():
        a, b = (pd.read_csv(runs[k] / f"{name}.csv") for k in ("original", "altered"))
        before_a, before_b = a[a["date"] <= CHANGE_AT], b[b["date"] <= CHANGE_AT]
        assert len(before_a) > 0
        pd.testing.assert_frame_equal(before_a[columns], before_b[columns])
        after = a["date"] > CHANGE_AT
        assert not np.allclose(a.loc[after, columns[0]], b.loc[after, columns[0]])
