"""What an engine's pure compute functions see: the snapshot, the model handles, the
measured statistics, and helpers that run a model with its provenance (or say why not).

Nothing here touches Redis or files; the worker layer (``shared.bus.engine``) loads the models,
reads the inputs and publishes the sections these functions return. ``run_batched`` calls a
model once for a whole batch of snapshots (one matrix, one booster call) and hands each
snapshot its own row of the answer, so a batch computes exactly what one-by-one would.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from shared.config import Settings
from shared.contract.document.base import Rate
from shared.contract.schemas import FeatureSnapshot, Provenance
from shared.market.calendar import SESSION_MINUTES
from shared.signals import provenance

T = TypeVar("T")
R = TypeVar("R", bound=Rate)


@dataclass
class ModelBook:
    """The models an engine uses, by name, each either loaded or with the reason it is not."""

    loaded: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> Any | None:
        return self.loaded.get(name)

    def versions(self) -> tuple[tuple[str, str | None], ...]:
        return tuple(sorted((n, m.ref.version) for n, m in self.loaded.items()))


# What compute functions see -----------------------------------------------------------------
@dataclass(frozen=True)
class ModelOutput:
    """A model's answer with its provenance, or the problem that prevented it (its
    provenance then a heuristic saying so: callers write their own fallback's)."""

    value: Any
    provenance: Provenance
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None

    @classmethod
    def failed(cls, problem: str) -> ModelOutput:
        return cls(None, provenance.heuristic(problem), problem)


@dataclass
class EngineContext:
    """Everything a pure compute function needs for one snapshot."""

    settings: Settings
    snapshot: FeatureSnapshot
    models: ModelBook
    sequence: np.ndarray | None  # (60, len(SEQUENCE_FEATURES)) of the daily_as_of session
    daily_cache: dict[Hashable, Any]  # shared by every snapshot with this daily_as_of, models
    failures: dict[str, str] = field(default_factory=dict)  # model name -> runtime error
    succeeded: set[str] = field(default_factory=set)  # models whose call returned
    batched: dict[str, ModelOutput] = field(default_factory=dict)  # see ``run_batched``

    def model(self, name: str) -> Any | None:
        return self.models.get(name)

    def model_provenance(self, name: str, **extra: str | None) -> Provenance:
        model = self.models.loaded[name]
        return provenance.from_model(
            name, model.ref.version, bool(model.in_sample(self.snapshot.daily_as_of)), **extra
        )

    def unavailable(self, name: str) -> str:
        return f"model {name} unavailable: {self.models.errors.get(name, 'not loaded')}"

    def run_model(self, name: str, call: Callable[[Any], T]) -> ModelOutput:
        """``call(model)`` with its provenance, or why there is no model output."""
        model = self.models.get(name)
        if model is None:
            return ModelOutput.failed(self.unavailable(name))
        try:
            output = ModelOutput(call(model), self.model_provenance(name), None)
            self.succeeded.add(name)
            return output
        except Exception as exc:  # a model bug is a fallback
            problem = f"model {name} failed: {type(exc).__name__}: {exc}"
            self.failures[name] = problem
            return ModelOutput.failed(problem)

    def batch_output(
        self, key: str, name: str, call: Callable[[Any, list[EngineContext]], Sequence[Any]]
    ) -> ModelOutput:
        """This snapshot's answer of a batched model call (see ``run_batched``); computed for
        this snapshot alone when no batch call has filled it in."""
        if key not in self.batched:
            run_batched([self], key, name, call)
        return self.batched[key]

    def measured_rate(self, statistic: str, regime: str, kind: type[R]) -> R:
        """A rate the ``stats`` model measured from data (``hit_rate``, ``spike_rate``) with
        its window and sample count, as ``kind`` (the fields it names); without that model,
        no rate at all (none invented). Once per daily_as_of and regime (the snapshots of a
        session share it)."""
        return self.once(
            ("measured_rate", statistic, regime),
            lambda: self._measured_rate(statistic, regime, kind),
        )

    def _measured_rate(self, statistic: str, regime: str, kind: type[R]) -> R:
        out = self.run_model("stats", lambda m: getattr(m, statistic)(regime))
        if out.ok:
            fields = {k: v for k, v in out.value.items() if k in kind.__struct_fields__}
            window = out.value.get("window")
            return kind(**fields, provenance=provenance.amended(out.provenance, window=window))
        return kind(
            value=None,
            window=None,
            regime=regime,
            samples=0,
            provenance=provenance.heuristic(f"{out.problem}; no measured rate, none invented"),
        )

    def once(self, key: Hashable, compute: Callable[[], T]) -> T:
        """A value of the session's daily data and the models (a daily model's output, a model's
        fixed choice or rate), computed once per daily_as_of and ``key`` (which holds anything
        else it depends on); the session's snapshots reuse it, read-only."""
        if key not in self.daily_cache:
            self.daily_cache[key] = compute()
        return self.daily_cache[key]

    @property
    def days_to_expiry(self) -> float:
        """Days to the expiry close: calendar days plus, intraday, the fraction of today's
        session still to trade (floored at one session minute so ranges never collapse)."""
        snap = self.snapshot
        left_today = 0.0
        if snap.kind == "intraday" and snap.intraday:
            minute = snap.intraday.get("minute_of_session") or 0.0
            left_today = max(0.0, SESSION_MINUTES - 1 - minute) / SESSION_MINUTES
        return max(snap.days_to_expiry + left_today, 1 / SESSION_MINUTES)


def run_batched(
    contexts: Sequence[EngineContext],
    key: str,
    name: str,
    call: Callable[[Any, list[EngineContext]], Sequence[Any]],
) -> None:
    """``call(model, contexts)`` once for every context that has no ``key`` answer yet: one
    row per context in, one value per context out, each stored under ``ctx.batched[key]``
    with its own provenance. A failing batch call is retried one context at a time, so one
    bad snapshot falls back to its heuristic alone and its neighbours keep the model."""
    todo = [c for c in contexts if key not in c.batched]
    if not todo:
        return
    model = todo[0].models.get(name)
    if model is None:
        for ctx in todo:
            ctx.batched[key] = ModelOutput.failed(ctx.unavailable(name))
        return
    try:
        values = list(call(model, todo))
        if len(values) != len(todo):
            raise ValueError(f"{len(values)} answers for {len(todo)} snapshots")
    except Exception as exc:  # a model bug is a fallback
        if len(todo) > 1:
            for ctx in todo:
                run_batched([ctx], key, name, call)
            return
        problem = f"model {name} failed: {type(exc).__name__}: {exc}"
        todo[0].failures[name] = problem
        todo[0].batched[key] = ModelOutput.failed(problem)
        return
    for ctx, value in zip(todo, values, strict=True):
        ctx.batched[key] = ModelOutput(value, ctx.model_provenance(name), None)
        ctx.succeeded.add(name)
