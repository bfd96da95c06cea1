"""The ``provenance`` object every signal group carries (see docs/ARCHITECTURE.md)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import msgspec

from shared.contract.schemas import Provenance


def _dump(**fields: Any) -> dict[str, Any]:
    # every block stamps a dozen provenances, nearly all seen before: validated once each
    return dict(_validated(tuple(fields.items())))


@lru_cache(maxsize=1024)
def _validated(fields: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    return msgspec.to_builtins(msgspec.convert(dict(fields), Provenance))


def from_model(
    name: str, version: str, in_sample: bool, formula: str | None = None, window: str | None = None
) -> dict[str, Any]:
    return _dump(
        source="model",
        model=name,
        version=version,
        in_sample=in_sample,
        formula=formula,
        window=window,
    )


def from_formula(formula: str, window: str | None = None) -> dict[str, Any]:
    return _dump(source="formula", formula=formula, window=window)


def from_data(window: str | None = None, note: str | None = None) -> dict[str, Any]:
    return _dump(source="data", window=window, note=note)


def heuristic(note: str, formula: str | None = None) -> dict[str, Any]:
    """A fallback value: always says why, so the document and health can show it."""
    return _dump(source="heuristic", note=note, formula=formula)


def climatology(model_provenance: dict[str, Any], why: str) -> dict[str, Any]:
    """A value that IS a base rate measured over a model's training window (that model
    showed no out-of-sample skill there): the window and version it came from, and why."""
    return _dump(
        source="climatology",
        model=model_provenance.get("model"),
        version=model_provenance.get("version"),
        window=model_provenance.get("window"),
        formula="class frequencies over the training window",
        note=why,
    )
