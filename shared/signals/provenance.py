"""The ``provenance`` every signal group carries (see docs/ARCHITECTURE.md): a
``shared.contract.schemas.Provenance`` struct; a field left None is not written."""

from __future__ import annotations

from typing import Any

from msgspec.structs import replace

from shared.contract.schemas import Provenance


def from_model(
    name: str, version: str, in_sample: bool, formula: str | None = None, window: str | None = None
) -> Provenance:
    return Provenance(
        source="model",
        model=name,
        version=version,
        in_sample=in_sample,
        formula=formula,
        window=window,
    )


def from_formula(formula: str, window: str | None = None) -> Provenance:
    return Provenance(source="formula", formula=formula, window=window)


def from_data(
    window: str | None = None, note: str | None = None, formula: str | None = None
) -> Provenance:
    return Provenance(source="data", window=window, note=note, formula=formula)


def heuristic(note: str, formula: str | None = None) -> Provenance:
    """A fallback value: always says why, so the document and health can show it."""
    return Provenance(source="heuristic", note=note, formula=formula)


def climatology(model_provenance: Provenance, why: str) -> Provenance:
    """A value that IS a base rate measured over a model's training window (that model
    showed no out-of-sample skill there): the window and version it came from, and why."""
    return Provenance(
        source="climatology",
        model=model_provenance.model,
        version=model_provenance.version,
        window=model_provenance.window,
        formula="class frequencies over the training window",
        note=why,
    )


def amended(provenance: Provenance, **fields: Any) -> Provenance:
    """``provenance`` with ``fields`` set (a formula, a note, a window added to a model's)."""
    return replace(provenance, **fields)
