"""A replay served by a walk-forward registry: the evaluation keeps each fold's models in a
registry, dated by the sessions they serve; the real engines replay the same sessions
serving each one the version valid for it; the history stores their blocks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from services.direction.main import DirectionWorker
from services.features.main import FeaturesWorker
from services.history.main import HistoryWorker
from services.ingest.sources.file_replay import ReplayWindow
from services.seller.main import SellerWorker
from services.trainer.evaluation import run_evaluation
from shared.config import Settings
from shared.history.store import HistoryStore, open_engine
from shared.models import registry
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


def test_a_replay_served_by_the_walk_forward_registry_names_each_sessions_version(
    settings: Settings, tmp_path: Path, evaluation: tuple[Path, Path, dict[str, Any]]
) -> None:
    out, wf, _ = evaluation
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
            assert refs["seller"].training_window.split("..")[1] < block.session_date
        else:
            assert valid is None and refs == {} and block.degraded, block.session_date
            assert block.data["safe_range"]["provenance"]["source"] == "heuristic"

    store.engine.dispose()
