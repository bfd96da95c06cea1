"""Direction and spike direction never pass climatology off as a model: a horizon without
significant held-out skill publishes the base rate and its provenance says so."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from services.buyer.compute import spike_bias
from services.direction.compute import horizons
from services.trainer.skill import MIN_SKILL_T, skill_gate, skill_t_stat
from shared.bus.engine import EngineContext, ModelBook
from shared.config import Settings
from shared.models import calibration
from shared.models.api import DIRECTION_CLASSES, HORIZONS
from shared.models.buyer import BuyerModels
from shared.models.direction import DirectionEnsemble
from tests.engines_support import daily_snapshot
from tests.models_support import loaded, short_data, snapshot, trained_registry

CLIM = np.array([0.45, 0.2, 0.35])


def _draw(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One class per row drawn from that row's probabilities."""
    return (rng.random(len(probs))[:, None] > np.cumsum(probs, axis=1)).sum(axis=1)


def test_gate_refuses_a_constant_forecast() -> None:
    labels = _draw(np.tile(CLIM, (600, 1)), np.random.default_rng(1))
    gate = skill_gate(np.tile(CLIM, (600, 1)), np.tile(CLIM, (600, 1)), labels, block=1)
    assert not gate.live and "constant" in gate.reason


def test_gate_refuses_noise_accepts_skill_and_refuses_worse_calibration() -> None:
    rng = np.random.default_rng(7)
    n = 1200
    truth = rng.dirichlet(np.ones(3) * 2, size=n)  # each day's real class probabilities
    labels = _draw(truth, rng)
    stale = np.tile(CLIM, (n, 1))  # a training-window climatology that has drifted
    noise = calibration.shrink(rng.dirichlet(np.ones(3), size=n), CLIM, 0.3)
    assert not skill_gate(noise, stale, labels, block=1).live
    gate = skill_gate(truth, stale, labels, block=1)
    assert gate.live and gate.brier_skill > 0.05 and gate.skill_t >= MIN_SKILL_T
    assert gate.ece < gate.ece_baseline
    # skilful but overconfident, against a climatology that is exactly right: refused
    exact = np.tile(np.bincount(labels, minlength=3) / n, (n, 1))
    overconfident = calibration.apply_temperature(truth, 0.75)
    gate = skill_gate(overconfident, exact, labels, block=1)
    assert not gate.live and "calibration error" in gate.reason


def test_skill_t_counts_overlapping_labels_once_per_block() -> None:
    """An h-session label repeated h times is one observation, not h."""
    rng = np.random.default_rng(3)
    gain = rng.normal(0.01, 0.1, size=100)
    once = skill_t_stat(np.zeros(100), gain, block=1)
    repeated = skill_t_stat(np.zeros(2000), np.repeat(gain, 20), block=20)
    assert repeated == pytest.approx(once)
    assert skill_t_stat(np.zeros(2000), np.repeat(gain, 20), block=1) > 3 * once


def test_brier_shrink_weight() -> None:
    rng = np.random.default_rng(5)
    truth = rng.dirichlet(np.ones(3), size=4000)
    labels = _draw(truth, rng)
    assert calibration.brier_shrink_weight(np.tile(CLIM, (4000, 1)), labels, CLIM) == 0.0
    assert calibration.brier_shrink_weight(truth, labels, CLIM) > 0.9
    noise = rng.dirichlet(np.ones(3), size=4000)  # no information beyond the frequencies
    freq = np.bincount(labels, minlength=3) / 4000
    assert calibration.brier_shrink_weight(noise, labels, freq) < 0.05


def test_trained_direction_is_model_only_where_it_varies() -> None:
    """Weight 0 <=> source climatology <=> exactly the climatology; a "model" horizon is
    never constant across sessions."""
    model = loaded(trained_registry(), DirectionEnsemble)
    preds = [model.predict(*snapshot(row)) for row in range(-60, 0, 6)]
    for h in HORIZONS:
        p = np.array([[pr[h][c] for c in DIRECTION_CLASSES] for pr in preds])
        weight = model.params["shrink_weight"][h]
        gate = model.manifest["metrics"]["validation"][h]["gate"]
        assert model.beats_climatology(h) == gate["live"] == (weight > 0)
        if model.source(h) == "climatology":
            clim = [model.climatology(h)[c] for c in DIRECTION_CLASSES]
            assert (p == np.array(clim)).all()  # exactly: Brier skill is 0, not -1e-9
        else:
            assert np.ptp(p, axis=0).max() > 1e-4


def _context(name: str, model: object, day: str) -> EngineContext:
    seq = short_data().sequences[short_data().frame.index.get_loc(day)]
    return EngineContext(Settings(), daily_snapshot(day), ModelBook({name: model}), seq, {})


def test_a_climatology_horizon_says_so_in_the_block() -> None:
    model = copy.copy(loaded(trained_registry(), DirectionEnsemble))
    weights = {h: 0.5 for h in HORIZONS} | {"t20": 0.0}
    model.params = {**model.params, "shrink_weight": weights}
    block = horizons(_context("direction", model, "2021-06-25"))
    t20, t1 = block.t20, block.t1
    assert t20.provenance.source == "climatology"
    assert t20.provenance.window == model.ref.training_window
    assert "no significant out-of-sample skill" in str(t20.provenance.note)
    assert t20.probabilities == t20.climatology
    assert t20.forecast is False  # the tile says "no forecast", not a coloured call
    assert t1.provenance.source == "model" and t1.forecast is True


def test_spike_direction_shrinks_to_its_base_rate() -> None:
    model = copy.copy(loaded(trained_registry(), BuyerModels))
    daily = daily_snapshot("2021-06-25").daily
    base = model.params["spike_base_rate"]
    model.params = {**model.params, "spike_shrink_weight": 0.0}
    assert model.spike_up_probability(daily) == base and model.spike_source() == "climatology"
    block = spike_bias(_context("buyer", model, "2021-06-25"))
    assert block.provenance.source == "climatology"
    assert block.up_prob == round(base, 4)
    model.params = {**model.params, "spike_shrink_weight": 0.5}
    raw = float(model.spike_up_probability(daily) - 0.5 * base) / 0.5
    assert 0 <= raw <= 1 and model.spike_source() == "model"
    assert spike_bias(_context("buyer", model, "2021-06-25")).provenance.source == "model"
