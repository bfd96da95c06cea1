"""A replay scored live reproduces the walk-forward evaluation: the evaluation keeps each
fold's models in a registry, dated by the sessions they serve; the real engines replay the
same sessions serving each one the version valid for it; the history stores their blocks;
and the gateway's scorecard of them equals the evaluation's figures of the published
forecasts on the same closes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from services.direction.main import DirectionWorker
from services.features.main import FeaturesWorker
from services.history.main import HistoryWorker
from services.ingest.sources.file_replay import ReplayWindow
from services.seller.main import SellerWorker
from services.trainer.evaluation import run_evaluation
from shared.config import Settings
from shared.history.scorecard import DIRECTION_HORIZONS, SIGMA_SESSIONS
from shared.history.store import HistoryStore, open_engine
from shared.models import registry
from shared.models.api import DIRECTION_CLASSES
from tests.gateway_harness import RunningGateway
from tests.pipeline import DATA_DIR, ingest

pytestmark = pytest.mark.slow  # about 25 s: three fast folds and a 2-year daily replay

START, END = "2019-09-01", "2020-03-31"  # three folds of 63 sessions (the last one short)
# The replay: 300+ sessions before START, so the features worker's trailing window gives the
# evaluation's features (shared/features/daily.py, WINDOW_ROWS), and one session after END,
# so the scorecard takes END's close as final (it leaves the newest stored session open).
REPLAY = ReplayWindow(daily_from="2018-03-01", end="2020-04-01", include_intraday=False)
PUBLISHED_DECIMALS = 4  # the engines publish probabilities and scores to 4 decimals


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("walk-forward")
    summary = run_evaluation(
        [DATA_DIR / "nifty50_daily.csv"],
        [DATA_DIR / "india_vix_daily.csv"],
        START,
        tmp / "out",
        retrain_every=63,
        fast=True,
        end=END,
        registry_dir=tmp / "registry",
    )
    return tmp / "out", tmp / "registry", summary


def test_a_replay_served_by_the_walk_forward_registry_scores_as_the_evaluation(
    settings: Settings, tmp_path: Path, evaluation: tuple[Path, Path, dict[str, Any]]
) -> None:
    out, wf, summary = evaluation
    settings = settings.model_copy(
        update={
            "walk_forward_model_dir": wf,
            "history_url": f"sqlite:///{tmp_path / 'history.sqlite3'}",
        }
    )
    ingest(settings, REPLAY)
    for worker in (FeaturesWorker, SellerWorker, DirectionWorker, HistoryWorker):
        worker(settings, "replay").run(max_idle_reads=2)

    # every session's blocks name the version valid for it; none before the first fold or
    # after the last: the labelled heuristic, never a model trained on a later date
    seller = pd.read_csv(out / "seller.csv", dtype={"date": str})
    sessions = seller["date"].tolist()
    store = HistoryStore(open_engine(settings.history_url))
    versions = registry.list_versions(wf, "seller")
    blocks = store.closing_blocks("seller", 0, 2**40)
    assert len(versions) == 3 and len(blocks) > 500
    for block in blocks:
        refs = {m.name: m for m in block.models}
        valid = registry.valid_version(versions, block.session_date)
        if block.session_date in sessions:
            assert valid is not None and refs["seller"].version == valid
            window = refs["seller"].training_window
            assert window is not None and window.split("..")[1] < block.session_date
        else:
            assert valid is None and refs == {} and block.degraded, block.session_date
            assert block.data["safe_range"]["provenance"]["source"] == "heuristic"

    # the scorecard of the evaluated sessions: from the first one's close to the newest
    days = (pd.Timestamp(REPLAY.end) - pd.Timestamp(sessions[0])).days
    with RunningGateway(settings) as gw:
        card = httpx.get(gw.url + "/api/v1/scorecard", params={"days": days}).json()
    assert card["safe_range"]["window"].startswith(sessions[0])
    assert card["in_sample_left_out"] == 0
    shipped = summary["volatility"]["shipped"]  # the signals as the engine publishes them
    model = {k: seller[f"live_{k}"] == "model" for k in ("expiry_range", "trap", "stress")}

    # the safe range: the same closes, each inside or not alike (overall and by VIX regime)
    seller["inside_shipped"] = seller["inside"].where(
        model["expiry_range"], seller["inside_vix_band"]
    )
    settled = seller.dropna(subset=["inside"])
    safe = card["safe_range"]
    assert safe["all"]["scored"] == len(settled) > 100
    assert safe["all"]["inside"] == settled["inside_shipped"].sum()
    assert safe["all"]["hit_rate"] == pytest.approx(shipped["safe_range_coverage"]["ALL"], abs=1e-4)
    assert 0 < safe["all"]["inside"] < safe["all"]["scored"]
    for regime, rows in settled.groupby("regime"):
        assert safe["by_regime"][regime]["scored"] == len(rows)
        assert safe["by_regime"][regime]["inside"] == rows["inside_shipped"].sum()
    # the breach curve at the engine's strikes, beside the VIX lognormal
    breach, expected = safe["breach"]["all"], shipped["breach_at_engine_strikes"]
    assert breach["strikes"] == expected["strikes"] > 1000
    assert breach["brier"] == pytest.approx(expected["brier"], abs=2e-5)
    assert breach["brier_lognormal"] == pytest.approx(expected["brier_lognormal"], abs=2e-5)
    # the trap: the same sessions and outcomes; its AUC and the stress rank correlation of the
    # values as published (rounding to 4 decimals ties a few, which moves them by ~3e-4)
    trap, expected = card["trap"]["all"], shipped["trap"]
    assert trap["scored"] == expected["samples"] > 100
    assert trap["event_rate"] == pytest.approx(expected["event_rate"], abs=1e-4)
    assert trap["brier"] == pytest.approx(expected["brier"], abs=2e-5)
    assert trap["auc"] == pytest.approx(expected["auc"], abs=1e-3)
    rows = seller.dropna(subset=["trap_actual"])
    as_published = rows["trap_probability"].where(model["trap"], rows["trap_base_rate"])
    auc = roc_auc_score(rows["trap_actual"], as_published.round(PUBLISHED_DECIMALS))
    assert trap["auc"] == pytest.approx(auc, abs=1e-4)
    stress, expected = card["stress"]["all"], shipped["stress_spearman_rv_to_expiry"]
    assert stress["scored"] == expected["samples"]
    assert stress["spearman"] == pytest.approx(expected["spearman"], abs=1e-3)
    rows = seller.dropna(subset=["rv_to_expiry"])
    score = rows["stress_score"].where(model["stress"], rows["stress_score_baseline"])
    rho = score.round(PUBLISHED_DECIMALS).corr(rows["rv_to_expiry"], "spearman")
    assert stress["spearman"] == pytest.approx(rho, abs=1e-4)

    # direction: the sessions the scorecard can label (20 stored closes before, h after)
    direction = pd.read_csv(out / "direction.csv", dtype={"date": str})
    stored = [*sessions, REPLAY.end]
    position = {day: i for i, day in enumerate(stored)}
    for horizon, h in DIRECTION_HORIZONS.items():
        rows = direction[direction["horizon"] == horizon]
        rows = rows[
            [SIGMA_SESSIONS <= position[d] < len(stored) - 1 - h for d in rows["date"]]
        ].dropna(subset=["actual"])
        onehot = np.eye(3)[rows["actual"].map(DIRECTION_CLASSES.index).to_numpy()]
        probs = rows[[f"p_{c}" for c in DIRECTION_CLASSES]].to_numpy()
        clim = rows[[f"clim_{c}" for c in DIRECTION_CLASSES]].to_numpy()
        scored = card["direction"][horizon]
        assert scored["scored"] == len(rows) > 50
        assert scored["brier"] == pytest.approx(((probs - onehot) ** 2).sum(1).mean(), abs=2e-5)
        assert scored["brier_climatology"] == pytest.approx(
            ((clim - onehot) ** 2).sum(1).mean(), abs=2e-5
        )
    store.engine.dispose()
