"""The base of the three engine services (direction, seller, buyer).

An engine consumes ``FeatureSnapshot``s from aegis:features (consumer group = service) and
publishes one ``SignalBlock`` per snapshot. This module holds the mechanics they share:
loading models through ``shared.models.loading.load_model`` (a model that cannot load is an
error in the log, ``degraded`` in health and ``source: heuristic`` in the block, never
silent), hot reload without a restart, the 60-session sequence of intraday snapshots, a cache
of daily-model outputs per ``daily_as_of``, the option-chain cache, and block stamping.
"""

from __future__ import annotations

import bisect
import signal
import time
from abc import abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any, ClassVar, TypeVar

import numpy as np
import redis

from shared import streams
from shared.blocks import build_block
from shared.calendar import SESSION_MINUTES
from shared.codec import DecodeError, decode, unpack
from shared.config import Settings
from shared.schemas import (
    Engine,
    FeatureSnapshot,
    Message,
    ModelPublished,
    ModelRef,
    OptionChain,
    SignalBlock,
)
from shared.signals import provenance
from shared.worker import StreamWorker

T = TypeVar("T")
RELOAD_CHECK_S = 1.0  # how often (at most) an engine polls for new model versions
DAILY_CACHE_SIZE = 8


# Models -------------------------------------------------------------------------------------
def _load_model(settings: Settings, name: str) -> Any:
    """Load the current version of ``name``; any failure (including the loader module
    itself being absent or broken) becomes ``ModelUnavailable`` with the reason."""
    try:
        from shared.models.loading import load_model
    except Exception as exc:  # the loader is another team's module: absence is a reason
        raise ModelUnavailable(f"model loader unavailable ({type(exc).__name__}: {exc})") from exc
    try:
        return load_model(settings.model_dir, name)
    except Exception as exc:  # ModelLoadError, or a bug in a model's loader
        raise ModelUnavailable(f"{type(exc).__name__}: {exc}") from exc


def _registry_version(settings: Settings, name: str) -> str | None:
    """The registry's live version of ``name`` (None when no registry or no version)."""
    try:
        from shared.models.registry import current_version
    except Exception:
        return None
    return current_version(settings.model_dir, name)


class ModelUnavailable(RuntimeError):
    pass


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
    """A model's answer with its provenance, or the problem that prevented it."""

    value: Any
    provenance: dict[str, Any] | None
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass
class EngineContext:
    """Everything a pure compute function needs for one snapshot."""

    settings: Settings
    snapshot: FeatureSnapshot
    models: ModelBook
    sequence: np.ndarray | None  # (60, len(SEQUENCE_FEATURES)) of the daily_as_of session
    daily_cache: dict[str, Any]  # shared by every snapshot with this daily_as_of and models
    failures: dict[str, str] = field(default_factory=dict)  # model name -> runtime error
    succeeded: set[str] = field(default_factory=set)  # models whose call returned

    def model(self, name: str) -> Any | None:
        return self.models.get(name)

    def model_provenance(self, name: str, **extra: str | None) -> dict[str, Any]:
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
            return ModelOutput(None, None, self.unavailable(name))
        try:
            output = ModelOutput(call(model), self.model_provenance(name), None)
            self.succeeded.add(name)
            return output
        except Exception as exc:  # a model bug must show as a fallback, not kill the block
            problem = f"model {name} failed: {type(exc).__name__}: {exc}"
            self.failures[name] = problem
            return ModelOutput(None, None, problem)

    def measured_rate(self, statistic: str, regime: str) -> dict[str, Any]:
        """A rate the ``stats`` model measured from data (``hit_rate``, ``spike_rate``) with
        its window and sample count; without that model, no rate at all (none invented)."""
        out = self.run_model("stats", lambda m: getattr(m, statistic)(regime))
        if out.ok:
            return {
                **out.value,
                "provenance": {**out.provenance, "window": out.value.get("window")},
            }
        return {
            "value": None,
            "window": None,
            "regime": regime,
            "samples": 0,
            "provenance": provenance.heuristic(f"{out.problem}; no measured rate, none invented"),
        }

    def once(self, key: str, compute: Callable[[], T]) -> T:
        """A daily-model output, computed once per daily_as_of (intraday snapshots reuse it)."""
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


def walk_provenance(data: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every (dotted path, provenance) pair inside a block's data."""
    if isinstance(data, dict):
        prov = data.get("provenance")
        if isinstance(prov, dict):
            yield path, prov
        for key, value in data.items():
            if key != "provenance":
                yield from walk_provenance(value, f"{path}.{key}" if path else str(key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from walk_provenance(value, f"{path}[{i}]")


# Option chains ------------------------------------------------------------------------------
class ChainCache:
    """The OptionChains on aegis:chains, read with plain XREAD (each replica reads all): the
    newest ``max_per_expiry`` snapshots of each of the latest ``max_expiries`` expiries."""

    def __init__(
        self, client: redis.Redis, max_per_expiry: int = 2000, max_expiries: int = 12
    ) -> None:
        self.client = client
        self.max_per_expiry = max_per_expiry
        self.max_expiries = max_expiries
        self.last_id = "0-0"
        self.by_expiry: dict[str, list[tuple[int, OptionChain]]] = {}
        self.rejected = 0

    def refresh(self) -> None:
        while True:
            reply = self.client.xread({streams.CHAINS: self.last_id}, count=1000)
            entries = reply[0][1] if reply else []
            for raw_id, fields in entries:
                self.last_id = raw_id.decode()
                try:
                    chain = decode(fields)
                except DecodeError:
                    self.rejected += 1  # the ingest side dead-letters bad input; skip here
                    continue
                if isinstance(chain, OptionChain):
                    self.add(chain)
            if len(entries) < 1000:
                return

    def add(self, chain: OptionChain) -> None:
        """A snapshot already held (a re-ingested chain file) replaces its earlier copy."""
        rows = self.by_expiry.setdefault(chain.expiry, [])
        i = bisect.bisect_left(rows, chain.snapshot_time, key=lambda r: r[0])
        if i < len(rows) and rows[i][0] == chain.snapshot_time:
            rows[i] = (chain.snapshot_time, chain)
            return
        rows.insert(i, (chain.snapshot_time, chain))
        del rows[: max(0, len(rows) - self.max_per_expiry)]
        for expiry in sorted(self.by_expiry)[: -self.max_expiries]:  # memory stays bounded
            del self.by_expiry[expiry]

    def for_snapshot(self, snapshot: FeatureSnapshot) -> OptionChain | None:
        """The newest chain taken at or before ``as_of`` whose expiry has not passed; the
        nearest expiry among equally new ones."""
        self.refresh()
        best: tuple[int, str, OptionChain] | None = None
        for expiry, rows in self.by_expiry.items():
            if expiry < snapshot.session_date:
                continue
            i = bisect.bisect_right(rows, snapshot.as_of, key=lambda r: r[0])
            if i == 0:
                continue
            taken, chain = rows[i - 1]
            if best is None or (taken, _neg(expiry)) > (best[0], _neg(best[1])):
                best = (taken, expiry, chain)
        return best[2] if best else None

    def kept(self, expiry: str, as_of: int) -> list[OptionChain]:
        """The kept snapshots of ``expiry`` taken at or before ``as_of``, oldest first."""
        rows = self.by_expiry.get(expiry, [])
        return [c for _, c in rows[: bisect.bisect_right(rows, as_of, key=lambda r: r[0])]]


def _neg(expiry: str) -> int:
    return -date.fromisoformat(expiry).toordinal()


# The worker ---------------------------------------------------------------------------------
class EngineWorker(StreamWorker):
    """Consume feature snapshots, compute one engine's section, publish it as a SignalBlock."""

    input_stream = streams.FEATURES
    engine: ClassVar[Engine]
    model_names: ClassVar[tuple[str, ...]]

    def __init__(self, settings: Settings, consumer: str | None = None) -> None:
        super().__init__(settings, consumer)
        self.models = ModelBook()
        self.reload_errors: dict[str, str] = {}
        self._failed_versions: dict[str, str | None] = {}
        self.runtime_errors: dict[str, str] = {}  # last failure of a loaded model's call
        self._models_cursor = self._stream_tail(streams.MODEL_EVENTS)
        self._last_reload_check = time.monotonic()
        self._sequences: OrderedDict[str, np.ndarray] = OrderedDict()
        self._daily_outputs: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()
        for name in self.model_names:
            if not self._load(name):
                self._failed_versions[name] = _registry_version(settings, name)

    # Compute (what each engine writes) ----------------------------------------------------
    @abstractmethod
    def compute(self, ctx: EngineContext) -> dict[str, Any]:
        """The engine's section of the document for one snapshot (pure given ``ctx``)."""

    # Consume -> compute -> publish --------------------------------------------------------
    def handle(self, message: Message, entry_id: str) -> Iterable[Message]:
        if not isinstance(message, FeatureSnapshot):
            raise TypeError(f"{self.service} expects feature_snapshot, got {message.TYPE}")
        self._check_for_new_models()
        self.clock.observe(message.as_of)
        ctx = self.context(message)
        data = self.compute(ctx)
        for name, problem in ctx.failures.items():
            self.log.error(
                "model_call_failed",
                model=name,
                reason=problem,
                as_of=message.as_of,
                fallback="heuristic",
            )
        self.runtime_errors.update(ctx.failures)
        for name in ctx.succeeded - ctx.failures.keys():  # a model that works again
            self.runtime_errors.pop(name, None)
        return [self.stamp(message, data)]

    def context(self, snapshot: FeatureSnapshot) -> EngineContext:
        key = (snapshot.daily_as_of, self.models.versions())
        cache = self._daily_outputs.get(key)
        if cache is None:
            cache = self._daily_outputs[key] = {}
            while len(self._daily_outputs) > DAILY_CACHE_SIZE:
                self._daily_outputs.popitem(last=False)
        return EngineContext(self.settings, snapshot, self.models, self._sequence(snapshot), cache)

    def stamp(self, snapshot: FeatureSnapshot, data: dict[str, Any]) -> SignalBlock:
        """The block for ``data``: stamps, models used, degraded reasons, digest of data."""
        used, degraded = set(), []
        for path, prov in walk_provenance(data):
            if prov.get("source") in ("model", "climatology"):  # a base rate is a model's too
                used.add(prov["model"])
            elif prov.get("source") == "heuristic":
                degraded.append(f"{path}: {prov.get('note')}")
        refs: list[ModelRef] = [self.models.loaded[n].ref for n in sorted(used)]
        return build_block(
            self.engine,
            snapshot,
            data,
            clock=self.clock,
            settings=self.settings,
            models=refs,
            degraded=degraded,
        )

    # Sequence of the daily session (intraday snapshots carry none) -------------------------
    def _sequence(self, snapshot: FeatureSnapshot) -> np.ndarray | None:
        day = snapshot.daily_as_of
        if snapshot.sequence is not None:
            seq = np.array(snapshot.sequence, dtype=np.float32)
        elif day in self._sequences:
            self._sequences.move_to_end(day)
            return self._sequences[day]
        else:
            raw = self.client.hget(streams.DAILY_FEATURES, day)
            if raw is None:
                return None  # not cached: a later snapshot will try again
            payload = unpack(raw)
            seq_rows = payload.get("sequence") if isinstance(payload, dict) else None
            if not seq_rows:
                return None
            seq = np.array(seq_rows, dtype=np.float32)
        self._sequences[day] = seq
        while len(self._sequences) > DAILY_CACHE_SIZE:
            self._sequences.popitem(last=False)
        return seq

    # Models: loading and hot reload -------------------------------------------------------
    def _load(self, name: str) -> bool:
        """Load the current version of ``name`` and swap it in; keep any running version when
        a new one fails. Returns True when a (new) model is now live."""
        try:
            model = _load_model(self.settings, name)
        except ModelUnavailable as exc:
            reason = str(exc)
            if name in self.models.loaded:
                self.reload_errors[name] = reason
                self.log.error(
                    "model_reload_failed",
                    model=name,
                    reason=reason,
                    serving=self.models.loaded[name].ref.version,
                )
            else:
                self.models.errors[name] = reason
                self.log.error("model_unavailable", model=name, reason=reason, fallback="heuristic")
            return False
        old = self.models.loaded.get(name)
        self.models.loaded[name] = model  # one dict assignment: the swap is atomic
        self.models.errors.pop(name, None)
        self.reload_errors.pop(name, None)
        self.runtime_errors.pop(name, None)
        self.log.info(
            "model_loaded",
            model=name,
            version=model.ref.version,
            previous=old.ref.version if old else None,
        )
        return True

    def _check_for_new_models(self, force: bool = False) -> None:
        """Cheap: one non-blocking XREAD of aegis:models plus one small file read per model,
        at most every RELOAD_CHECK_S. Loads happen between snapshots, so no block is missed."""
        now = time.monotonic()
        if not force and now - self._last_reload_check < RELOAD_CHECK_S:
            return
        self._last_reload_check = now
        wanted: set[str] = set()
        reply = self.client.xread({streams.MODEL_EVENTS: self._models_cursor}, count=100)
        for raw_id, fields in reply[0][1] if reply else []:
            self._models_cursor = raw_id.decode()
            try:
                event = decode(fields)
            except DecodeError as exc:
                self.log.warning(
                    "model_event_unreadable", entry_id=self._models_cursor, reason=str(exc)
                )
                continue
            if isinstance(event, ModelPublished) and event.name in self.model_names:
                wanted.add(event.name)
        for name in self.model_names:
            live = _registry_version(self.settings, name)
            model = self.models.loaded.get(name)
            if live is None or (model is not None and model.ref.version == live):
                continue
            if self._failed_versions.get(name) != live:  # a failed version waits for another
                wanted.add(name)
        for name in sorted(wanted):
            if not self._load(name):
                self._failed_versions[name] = _registry_version(self.settings, name)

    def _stream_tail(self, stream: str) -> str:
        """The id of the newest entry of ``stream`` ("0-0" when empty): read from there on."""
        newest = self.client.xrevrange(stream, count=1)
        return newest[0][0].decode() if newest else "0-0"

    def on_idle(self) -> None:
        self._check_for_new_models()

    def serve(self) -> None:
        """Run until SIGTERM / SIGINT (docker stop, Ctrl-C), then finish the batch and exit."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop())
        self.run()

    # Health -------------------------------------------------------------------------------
    def degraded_reasons(self) -> list[str]:
        return [
            f"model {n} unavailable, heuristic in use: {r}"
            for n, r in sorted(self.models.errors.items())
        ] + [
            f"model {n} call failed, heuristic in use: {r}"
            for n, r in sorted(self.runtime_errors.items())
        ]

    def health_details(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "models": [
                {"name": n, "version": m.ref.version, "trained_at": m.ref.trained_at}
                for n, m in sorted(self.models.loaded.items())
            ],
            "model_errors": dict(self.models.errors),
            "reload_errors": dict(self.reload_errors),
        }
