"""``boosters.predict`` calls xgboost's dense prediction directly: it must give exactly what
``Booster.inplace_predict`` gives, for every booster the trainer writes, one row or many, with
missing values, and keep its result when the booster predicts again."""

from __future__ import annotations

import numpy as np
import pytest

from shared.models import boosters
from tests.models_support import trained_registry


def every_booster() -> list:
    return [boosters.load(path) for path in sorted(trained_registry().rglob("*.ubj"))]


@pytest.mark.slow
@pytest.mark.parametrize("rows", [1, 7])
def test_predict_equals_inplace_predict_exactly(rows: int) -> None:
    found = every_booster()
    assert len(found) >= 3  # direction, intraday, buyer... (the trainer's boosters)
    rng = np.random.default_rng(7)
    for booster in found:
        x = rng.normal(size=(rows, booster.num_features())).astype(np.float32)
        x[0, 0] = np.nan  # missing
        expected = booster.inplace_predict(x, validate_features=False)
        got = boosters.predict(booster, x if rows > 1 else x[0])
        assert got.dtype == expected.dtype and got.shape == expected.shape
        assert np.array_equal(got, expected, equal_nan=True)


@pytest.mark.slow
def test_a_result_is_not_overwritten_by_the_next_prediction() -> None:
    booster = every_booster()[0]
    x = np.zeros((1, booster.num_features()), dtype=np.float32)
    first = boosters.predict(booster, x)
    kept = first.copy()
    boosters.predict(booster, np.ones_like(x))
    assert np.array_equal(first, kept)
