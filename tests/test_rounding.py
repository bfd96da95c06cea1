"""``shared.signals.rounding.rounded`` gives exactly the floats Python's ``round`` gives."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shared.signals.rounding import rounded


def _same(a: list[float | None], b: list[float | None]) -> bool:
    """Equal values, None where None, and the same sign of zero."""
    return all(
        x is y is None
        or (
            x is not None and y is not None and (x, math.copysign(1, x)) == (y, math.copysign(1, y))
        )
        for x, y in zip(a, b, strict=True)
    )


@pytest.mark.parametrize("ndigits", [0, 1, 2, 4, 6])
def test_rounded_equals_round_on_random_and_tie_values(ndigits: int) -> None:
    rng = np.random.default_rng(ndigits)
    ties = (np.arange(-20_000, 20_000) + 0.5) / 10**ndigits  # decimal ties: 2.675, 0.125...
    values: list[float | None] = [
        *rng.normal(0, 300, 20_000).tolist(),
        *(rng.normal(0, 1, 5_000) * 10.0 ** rng.integers(-8, 12, 5_000)).tolist(),
        *ties.tolist(),
        *(np.nextafter(ties, np.inf)).tolist(),
        *(np.nextafter(ties, -np.inf)).tolist(),
        2.675, 1.005, 0.125, -0.125, -0.001, 0.0, -0.0, 1e300, -1e300, 2.0**60 + 0.5,
        None, math.inf, -math.inf,
    ]  # fmt: skip
    expected = [None if v is None else round(v, ndigits) for v in values]
    assert _same(rounded(values, ndigits), expected)


def test_nan_is_no_value_and_bad_ndigits() -> None:
    assert rounded(np.array([math.nan, 1.005]), 2) == [None, round(1.005, 2)]
    with pytest.raises(ValueError, match="ndigits"):
        rounded([1.0], 23)
