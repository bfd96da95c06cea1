"""Training: valid outputs, determinism, reload in a new process reproduces predictions."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from services.trainer.artifacts import version_id
from services.trainer.pipeline import ensure_models, missing_models
from services.trainer.profiles import FAST
from services.trainer.skill import Gate, skill_gate
from shared.config import PROJECT_ROOT, Settings
from shared.features.intraday import IntradaySession
from shared.models import registry
from shared.models.api import HORIZONS
from shared.models.buyer import BuyerModels
from shared.models.direction import DirectionEnsemble
from shared.models.intraday import IntradayDirection
from shared.models.seller import SellerModels
from shared.models.stats import MeasuredStatistics
from tests.models_support import WINDOW, loaded, short_data, snapshot, trained_registry

PREDICT = """
import json, sys
from pathlib import Path
from tests.models_support import snapshot
from shared.models.loading import load_model
daily, seq = snapshot(-5)
d = load_model(Path(sys.argv[1]), "direction").predict(daily, seq)
s = load_model(Path(sys.argv[1]), "seller").breach_probability(daily, 15000.0, 15300.0, 3)
print(json.dumps({"direction": d, "breach": s}))
"""


def test_direction_outputs_are_distributions() -> None:
    model = loaded(trained_registry(), DirectionEnsemble)
    daily, seq = snapshot()
    out = model.predict(daily, seq)
    assert set(out) == set(HORIZONS)
    for h, p in out.items():
        assert abs(p["up"] + p["neutral"] + p["down"] - 1) < 1e-5
        assert isinstance(model.beats_climatology(h), bool)
        assert abs(sum(model.climatology(h).values()) - 1) < 1e-9
    # a short window (NaN-padded) still predicts
    assert set(model.predict(daily, seq[-10:])) == set(HORIZONS)


def test_all_contract_methods(tmp_path: Path) -> None:
    md = trained_registry()
    daily, _ = snapshot()
    seller = loaded(md, SellerModels)
    buyer = loaded(md, BuyerModels)
    stats = loaded(md, MeasuredStatistics)
    assert 0 <= seller.trap_probability(daily) <= 1
    assert abs(sum(seller.stress_probabilities(daily).values()) - 1) < 1e-5
    near = seller.breach_probability(daily, 15000, 15075, 5)
    far = seller.breach_probability(daily, 15000, 15450, 5)
    assert 0 <= far <= near <= 1
    assert all(0 <= buyer.breakout_probability(daily, k) <= 1 for k in range(6))
    assert 0 <= buyer.spike_up_probability(daily) <= 1
    assert buyer.predicted_move_to_expiry(daily, 3) >= 0
    z_lo, z_hi, target = stats.safe_range_z("NORMAL")
    assert z_lo > 0 and z_hi > 0 and target == Settings().coverage_target
    assert {"value", "window", "regime", "samples"} <= set(stats.hit_rate("UNKNOWN"))
    assert {"value", "window", "regime", "samples"} <= set(stats.spike_rate("LOW"))
    blocks = stats.gamma_windows()
    assert blocks[0]["block"] == "09:15-09:45" and blocks[-1]["block"] == "15:15-15:30"
    intraday = loaded(md, IntradayDirection)
    session = IntradaySession("2021-06-30", 15750.0, 15800.0, 15700.0, 180.0)
    session.update(1625024700, 15760, 15770, 15750, 15765)
    out = intraday.predict(daily, session.features())
    assert abs(out["up"] + out["neutral"] + out["down"] - 1) < 1e-5


@pytest.mark.slow
def test_reload_in_new_process_reproduces_predictions() -> None:
    md = trained_registry()
    runs = [
        subprocess.run(
            [sys.executable, "-c", PREDICT, str(md)],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()[-1]
        for _ in range(2)
    ]
    daily, seq = snapshot(-5)
    here = loaded(md, DirectionEnsemble).predict(daily, seq)
    assert runs[0] == runs[1]
    assert json.loads(runs[0])["direction"] == json.loads(json.dumps(here))


def test_same_data_and_seed_give_same_version_and_weights(tmp_path: Path) -> None:
    data = short_data()
    a = version_id("direction", data.end, data.fingerprint(), FAST.to_dict())
    assert a == version_id("direction", data.end, data.fingerprint(), FAST.to_dict())
    assert a != version_id("direction", data.end, data.fingerprint(), {**FAST.to_dict(), "seed": 1})
    from services.trainer.direction import train_direction

    first = train_direction(data, FAST)
    second = train_direction(data, FAST)
    for path in (tmp_path / "a", tmp_path / "b"):
        path.mkdir()
    first.write_files(tmp_path / "a")
    second.write_files(tmp_path / "b")
    for f in (tmp_path / "a").iterdir():
        assert f.read_bytes() == (tmp_path / "b" / f.name).read_bytes(), f.name


@pytest.mark.slow
def test_ensure_models_trains_only_missing(tmp_path: Path) -> None:
    import shutil

    md = tmp_path / "models"
    shutil.copytree(trained_registry(), md)
    shutil.rmtree(md / "stats")
    # the registry's window (a live start would retrain every model on all the data)
    settings = Settings(
        model_dir=md, train_end=WINDOW[1], redis_url="redis://127.0.0.1:1/0", embedded_redis=False
    )
    before = {n: registry.current_version(md, n) for n in ("direction", "seller")}
    assert missing_models(settings) == ["stats"]
    assert ensure_models(settings, profile=FAST) == ["stats"]
    assert missing_models(settings) == []
    assert {n: registry.current_version(md, n) for n in before} == before
    assert np.isfinite(loaded(md, MeasuredStatistics).safe_range_z("HIGH")[0])


def test_the_published_direction_model_is_the_one_validated() -> None:
    """Its base models, temperature and fitted weight reproduce, on the validation fold, the
    log loss recorded when it was gated: what was gated is what ships (a model refitted on the
    whole window would not, and its calibration would be another model's)."""
    from services.trainer.direction import MAX_HORIZON, targets, usable_rows
    from services.trainer.splits import purged_folds
    from shared.models import calibration
    from shared.models.direction import combine

    model = loaded(trained_registry(), DirectionEnsemble)
    data = short_data()
    y, _ = targets(data)
    rows = usable_rows(data)
    rows = rows[~np.isnan(y[rows, 0])]
    validate = purged_folds(rows, MAX_HORIZON).validate
    recorded = model.manifest["metrics"]["validation"]
    for h, gate in recorded.items():  # a live horizon shrinks toward what it was gated with
        if gate["gate"]["live"]:
            assert model.params["climatology"][h] == gate["climatology"]
    gated = {  # each horizon shrunk by its fitted weight toward the climatology it was gated on
        **model.params,
        "shrink_weight": {h: v["fitted_shrink_weight"] for h, v in recorded.items()},
        "climatology": {h: v["climatology"] for h, v in recorded.items()},
    }
    x = data.features.to_numpy(dtype=np.float32)[validate]
    probs = combine(*model.raw_batch(x, data.sequences[validate]), gated)
    for j, h in enumerate(model.horizons):
        known = ~np.isnan(y[validate, j])
        loss = calibration.log_loss(probs[known, j], y[validate[known], j].astype(int))
        assert loss == pytest.approx(recorded[h]["log_loss"], abs=1e-5), h


def _gate_forced_open(
    probs: np.ndarray, baseline: np.ndarray, labels: np.ndarray, block: int
) -> Gate:
    return dataclasses.replace(
        skill_gate(probs, baseline, labels, block), live=True, reason="forced (test)"
    )


def test_a_live_horizon_publishes_the_gated_forecast_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the gate forced open at every horizon, the published model's forecast on the
    validation fold is the one that was gated: same base models, temperature, weight and
    climatology (the training fold's), so it scores the recorded log loss."""
    from services.trainer import direction as trainer_direction
    from services.trainer.pipeline import publish_models
    from services.trainer.splits import purged_folds
    from shared.models import calibration

    monkeypatch.setattr(trainer_direction, "skill_gate", _gate_forced_open)
    data = short_data()
    publish_models([trainer_direction.train_direction(data, FAST)], data, FAST, tmp_path, None)
    model = loaded(tmp_path, DirectionEnsemble)
    y, _ = trainer_direction.targets(data)
    rows = trainer_direction.usable_rows(data)
    rows = rows[~np.isnan(y[rows, 0])]
    validate = purged_folds(rows, trainer_direction.MAX_HORIZON).validate
    x = data.features.to_numpy(dtype=np.float32)[validate]
    probs = model.predict_batch(x, data.sequences[validate])
    recorded = model.manifest["metrics"]["validation"]
    for j, h in enumerate(model.horizons):
        assert model.source(h) == "model"
        known = ~np.isnan(y[validate, j])
        loss = calibration.log_loss(probs[known, j], y[validate[known], j].astype(int))
        assert loss == pytest.approx(recorded[h]["log_loss"], abs=1e-9), h


def test_a_live_spike_model_is_the_gated_booster_and_base_rate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from services.trainer import buyer as trainer_buyer
    from services.trainer.splits import purged_folds
    from services.trainer.tabular import Head, fit
    from shared.models import boosters, labels

    monkeypatch.setattr(trainer_buyer, "skill_gate", _gate_forced_open)
    data = short_data()
    booster, params, metrics = trainer_buyer.train_spike(data, FAST)
    assert params["spike_shrink_weight"] == metrics["fitted_shrink_weight"]
    assert params["spike_base_rate"] == metrics["base_rate_train"]  # what it was gated with
    # the booster fitted on the training fold (training is deterministic), not a refit
    spike, up = labels.next_session_spike(data.frame["close"], data.features["sigma20_daily"])
    y = up.to_numpy()
    rows = np.flatnonzero((spike == 1).to_numpy() & ~np.isnan(y))
    train = purged_folds(rows, 1).train
    x = data.features.to_numpy(dtype=np.float32)
    again = fit(x[train], y[train], Head("binary"), FAST)
    assert np.array_equal(boosters.predict(booster, x[rows]), boosters.predict(again, x[rows]))
