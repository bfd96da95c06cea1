"""The base of the three engine services (direction, seller, buyer).

An engine consumes ``FeatureSnapshot``s from aegis:features (consumer group = service) and
publishes one ``SignalBlock`` per snapshot; a read batch is computed at once (the engine's
``compute_batch`` calls each model once for the batch). This module is the I/O side the
engines share (what their pure compute functions see is ``shared.models.context``): loading
models through ``shared.models.loading.load_model`` (a model that cannot load is an error
in the log, ``degraded`` in health and ``source: heuristic`` in the block, never silent),
hot reload without a restart, the 60-session sequence of intraday snapshots, a cache
of daily-model outputs per ``daily_as_of``, the option-chain cache, and block stamping.
With ``walk_forward_model_dir`` set, each snapshot is served instead by the versions of a
walk-forward registry valid for its session (``DatedModelBooks``).
"""

from __future__ import annotations

import bisect
import gc
import time
from abc import abstractmethod
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Sequence
from itertools import groupby
from pathlib import Path
from typing import Any, ClassVar

import msgspec
import numpy as np
import redis

from shared.bus import replies, streams
from shared.bus.worker import StreamWorker
from shared.config import Settings
from shared.contract.block_limits import packed_limit_problem
from shared.contract.blocks import build_block, pack_data, provenance_summary
from shared.contract.codec import DecodeError, decode, unpack
from shared.contract.document import BlockData
from shared.contract.schemas import (
    Engine,
    FeatureSnapshot,
    FuturesDay,
    Message,
    ModelPublished,
    ModelRef,
    OptionChain,
    ParticipantPositions,
    SignalBlock,
)
from shared.logs import get_logger
from shared.market.calendar import beyond_next_session, ist_date, ist_iso
from shared.market.chain_validation import chain_problems
from shared.market.chain_validation import describe as describe_chain
from shared.market.participant_oi import ParticipantOIDay, from_message
from shared.market.validation import Rejected
from shared.models.context import EngineContext, ModelBook

log = get_logger("engine")
RELOAD_CHECK_S = 1.0  # how often (at most) an engine polls for new model versions
DAILY_CACHE_SIZE = 8


# Models -------------------------------------------------------------------------------------
def _load_model(model_dir: Path, name: str, version: str | None = None) -> Any:
    """Load the current (or given) version of ``name``; any failure (including the loader
    module itself being absent or broken) becomes ``ModelUnavailable`` with the reason."""
    try:
        from shared.models.loading import load_model
    except Exception as exc:  # the loader is another team's module: absence is a reason
        raise ModelUnavailable(f"model loader unavailable ({type(exc).__name__}: {exc})") from exc
    try:
        return load_model(model_dir, name, version)
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


class DatedModelBooks:
    """The models of a walk-forward registry by session: a snapshot of session S is served
    by each model's version valid for S (trained on data ending before S: out of sample by
    construction), or, without one, by none (the engines' labelled heuristic fallback).
    The registry is fixed while serving (no hot reload); a replay moves forward in time, so
    the books of the last two version sets are kept."""

    KEPT = 2

    def __init__(self, model_dir: Path, names: tuple[str, ...]) -> None:
        from shared.models.registry import list_versions

        self.model_dir = model_dir
        self.versions = {name: list_versions(model_dir, name) for name in names}
        self._books: OrderedDict[tuple[str | None, ...], ModelBook] = OrderedDict()
        self._session: tuple[str, ModelBook] | None = None

    def book(self, session: str) -> ModelBook:
        if self._session is not None and self._session[0] == session:
            return self._session[1]
        from shared.models.registry import valid_version

        chosen = tuple(valid_version(v, session) for v in self.versions.values())
        book = self._books.get(chosen)
        if book is None:
            book = self._books[chosen] = self._load(session, chosen)
            while len(self._books) > self.KEPT:
                self._books.popitem(last=False)
        self._session = (session, book)
        return book

    def _load(self, session: str, chosen: tuple[str | None, ...]) -> ModelBook:
        book = ModelBook()
        for name, version in zip(self.versions, chosen, strict=True):
            try:
                if version is None:
                    raise ModelUnavailable(
                        f"no version valid for session {session} in the walk-forward "
                        f"registry {self.model_dir}"
                    )
                book.loaded[name] = _load_model(self.model_dir, name, version)
            except ModelUnavailable as exc:
                book.errors[name] = str(exc)
        log.info(
            "walk_forward_models",
            session=session,
            versions={n: v for n, v in zip(self.versions, chosen, strict=True)},
            unavailable=sorted(book.errors),
        )
        return book


# Option chains ------------------------------------------------------------------------------
class ChainCache:
    """The OptionChains on aegis:chains, read with plain XREAD (each replica reads all): the
    newest ``max_per_expiry`` snapshots of each of the latest ``max_expiries`` expiries.

    Time sanity, on the stream's own clock (its newest chain kept): a chain taken past the
    first session after it is held back until the next chain shows the stream really moved
    on (kept both), or is older (the held one refused): one record cannot carry the cache's
    clock into the future, where every listed expiry would count as expired."""

    def __init__(
        self, client: redis.Redis, max_per_expiry: int = 2000, max_expiries: int = 12
    ) -> None:
        self.client = client
        self.max_per_expiry = max_per_expiry
        self.max_expiries = max_expiries
        self.last_id = "0-0"
        self.by_expiry: dict[str, list[tuple[int, OptionChain]]] = {}
        self.rejected = 0
        self.last_rejection: str | None = None
        self._newest = 0  # newest snapshot time held
        self._ahead: tuple[bytes, OptionChain] | None = None  # held back, see the docstring
        self.max_daily_records = 400  # sessions of participant OI and futures rows kept
        self.participants: dict[str, ParticipantPositions] = {}
        self._participant_days: dict[str, ParticipantOIDay] = {}
        self.futures: dict[str, FuturesDay] = {}
        self._timelines: tuple[list[tuple[int, str]], list[tuple[int, str]]] | None = None

    def refresh(self) -> None:
        added = False
        while True:
            entries = replies.xread(self.client, streams.CHAINS, self.last_id, count=1000)
            added = added or bool(entries)
            for raw_id, fields in entries:
                self.last_id = raw_id.decode()
                try:
                    chain = decode(fields)
                except DecodeError as exc:
                    self._reject(raw_id, str(exc))
                    continue
                if isinstance(chain, ParticipantPositions | FuturesDay):
                    self._add_daily(raw_id, chain)
                    continue
                if not isinstance(chain, OptionChain):
                    continue
                problems = chain_problems(chain)
                if problems:  # never enters the cache, so never displaces a valid chain
                    self._reject(raw_id, f"{describe_chain(chain)}: {'; '.join(problems)}")
                    continue
                self._admit(raw_id, chain)
            if len(entries) < 1000:
                break
        if added:
            # The kept chains are long-lived by design (up to 24,000, freed by reference
            # counting when evicted): out of the cyclic collector's scans, whose full passes
            # over them (with per-strike quote objects) were 80-170 ms stalls of the seller.
            gc.freeze()

    def _admit(self, raw_id: bytes, chain: OptionChain) -> None:
        """Add ``chain``, or hold it back while it is past the session after the newest."""
        if self._ahead is not None:
            ahead_id, ahead = self._ahead
            self._ahead = None
            if chain.snapshot_time >= ahead.snapshot_time:
                self.add(ahead)  # the stream did move on: a gap in the snapshots
            else:
                self._reject(
                    ahead_id,
                    f"{describe_chain(ahead)}: taken past the first session after the newest "
                    f"chain ({ist_iso(self._newest)}), and the next chain is older",
                )
        if self._newest and beyond_next_session(chain.snapshot_time, self._newest):
            self._ahead = (raw_id, chain)
            return
        self.add(chain)

    def held_back(self) -> str | None:
        """The chain taken past the session after the newest, while the next one is awaited."""
        return None if self._ahead is None else describe_chain(self._ahead[1])

    def _add_daily(self, raw_id: bytes, record: ParticipantPositions | FuturesDay) -> None:
        """A session's participant OI or future row; a re-published session replaces it."""
        held: dict[str, Any] = (
            self.participants if isinstance(record, ParticipantPositions) else self.futures
        )
        if isinstance(record, ParticipantPositions):
            try:
                self._participant_days[record.session_date] = from_message(record)
            except ValueError as exc:
                self._reject(raw_id, f"{record.TYPE} {record.session_date}: {exc}")
                return
        held[record.session_date] = record
        for old in sorted(held)[: -self.max_daily_records]:
            del held[old]
            self._participant_days.pop(old, None)
        self._timelines = None

    def daily_known_at(
        self, as_of: int, count: int
    ) -> tuple[list[ParticipantOIDay], list[FuturesDay]]:
        """The last ``count`` participant records and futures rows known at ``as_of``
        (``available_at`` at or before it), oldest first. Two bisects per snapshot: the
        timelines are rebuilt only when a record arrives."""
        if self._timelines is None:
            self._timelines = (
                sorted((r.available_at, d) for d, r in self.participants.items()),
                sorted((r.available_at, d) for d, r in self.futures.items()),
            )
        people, futures = self._timelines
        i = bisect.bisect_right(people, (as_of, "\uffff"))
        j = bisect.bisect_right(futures, (as_of, "\uffff"))
        return (
            [self._participant_days[d] for _, d in people[max(0, i - count) : i]],
            [self.futures[d] for _, d in futures[max(0, j - count) : j]],
        )

    def _reject(self, raw_id: bytes, reason: str) -> None:
        """Every replica reads every chain, so a refused one is counted and logged here (and
        shown in health), while the producer that wrote it dead-letters it."""
        self.rejected += 1
        self.last_rejection = f"{raw_id.decode()}: {reason}"
        log.warning("chain_refused", entry=raw_id.decode(), reason=reason)

    def add(self, chain: OptionChain) -> None:
        """A snapshot already held (a re-ingested chain file) replaces its earlier copy."""
        rows = self.by_expiry.setdefault(chain.expiry, [])
        i = bisect.bisect_left(rows, chain.snapshot_time, key=lambda r: r[0])
        if i < len(rows) and rows[i][0] == chain.snapshot_time:
            rows[i] = (chain.snapshot_time, chain)
            return
        rows.insert(i, (chain.snapshot_time, chain))
        del rows[: max(0, len(rows) - self.max_per_expiry)]
        self._newest = max(self._newest, chain.snapshot_time)
        if len(self.by_expiry) > self.max_expiries:  # memory stays bounded:
            # expired expiries go first, then the farthest (a bhavcopy lists 18, to 2030)
            today = ist_date(self._newest).isoformat()
            held = sorted(self.by_expiry)
            expired = [e for e in held if e < today][: len(held) - self.max_expiries]
            live = [e for e in held if e not in expired]
            for expiry in expired + live[self.max_expiries :]:
                del self.by_expiry[expiry]

    def recent(self, expiry: str, as_of: int, count: int) -> list[OptionChain]:
        """The last ``count`` kept snapshots of ``expiry`` taken at or before ``as_of``,
        oldest first."""
        rows = self.by_expiry.get(expiry, [])
        end = bisect.bisect_right(rows, as_of, key=lambda r: r[0])
        return [c for _, c in rows[max(0, end - count) : end]]


# The worker ---------------------------------------------------------------------------------
class EngineWorker(StreamWorker):
    """Consume feature snapshots, compute one engine's section, publish it as a SignalBlock."""

    input_stream = streams.FEATURES
    batched = True  # a read batch is computed at once: one model call per model per batch
    engine: ClassVar[Engine]
    model_names: ClassVar[tuple[str, ...]]

    def __init__(self, settings: Settings, consumer: str | None = None) -> None:
        super().__init__(settings, consumer)
        self.models = ModelBook()  # the models serving (dated: the last snapshot's)
        self.dated = (
            None
            if settings.walk_forward_model_dir is None
            else DatedModelBooks(settings.walk_forward_model_dir, self.model_names)
        )
        self.reload_errors: dict[str, str] = {}
        self._failed_versions: dict[str, str | None] = {}
        self.runtime_errors: dict[str, str] = {}  # last failure of a loaded model's call
        self._models_cursor = self._stream_tail(streams.MODEL_EVENTS)
        self._last_reload_check = time.monotonic()
        self._sequences: OrderedDict[str, np.ndarray] = OrderedDict()
        self._daily_outputs: OrderedDict[tuple[Any, ...], dict[Hashable, Any]] = OrderedDict()
        self.chains: ChainCache | None = None  # engines that read aegis:chains set it
        for name in self.model_names if self.dated is None else ():
            if not self._load(name):
                self._failed_versions[name] = _registry_version(settings, name)

    # Compute (what each engine writes) ----------------------------------------------------
    @abstractmethod
    def compute(self, ctx: EngineContext) -> BlockData:
        """The engine's section of the document for one snapshot (pure given ``ctx``): the
        engine's data struct of the contract (shared.contract.document)."""

    def compute_batch(self, contexts: list[EngineContext]) -> Sequence[BlockData]:
        """The sections of a batch of snapshots; an engine overrides it to call its models
        once for the whole batch (``shared.models.context.run_batched``). Same result as ``compute``
        one snapshot at a time."""
        return [self.compute(ctx) for ctx in contexts]

    def refresh_inputs(self) -> None:
        """Read side inputs (e.g. option chains) once per batch, before computing it."""
        return None

    # Consume -> compute -> publish --------------------------------------------------------
    def handle(self, message: Message, entry_id: str) -> Iterable[Message]:
        return self.handle_batch([(message, entry_id)])[0]

    def handle_batch(self, batch: list[tuple[Message, str]]) -> list[list[Message]]:
        snapshots = []
        for message, _ in batch:
            if not isinstance(message, FeatureSnapshot):
                raise TypeError(f"{self.service} expects feature_snapshot, got {message.TYPE}")
            snapshots.append(message)
        self.refresh_inputs()
        contexts = [self.context(snapshot) for snapshot in snapshots]
        sections: list[BlockData] = []
        if self.dated is None:
            sections += self.compute_batch(contexts)
        else:  # one batched model call per run of snapshots served by the same versions
            for _, run in groupby(contexts, key=lambda ctx: id(ctx.models)):
                sections += self.compute_batch(list(run))
        blocks: list[list[Message]] = []
        for ctx, data in zip(contexts, sections, strict=True):
            self._note_model_calls(ctx)
            self.clock.observe(ctx.snapshot.as_of)
            blocks.append([self.stamp(ctx, data)])
        return blocks

    def _note_model_calls(self, ctx: EngineContext) -> None:
        """Log the model calls that failed for this snapshot; clear those that work again."""
        for name, problem in ctx.failures.items():
            self.log.error(
                "model_call_failed",
                model=name,
                reason=problem,
                as_of=ctx.snapshot.as_of,
                fallback="heuristic",
            )
        self.runtime_errors.update(ctx.failures)
        for name in ctx.succeeded - ctx.failures.keys():  # a model that works again
            self.runtime_errors.pop(name, None)

    def context(self, snapshot: FeatureSnapshot) -> EngineContext:
        if self.dated is not None:
            self.models = self.dated.book(snapshot.session_date)
        key = (snapshot.daily_as_of, self.models.versions())
        cache = self._daily_outputs.get(key)
        if cache is None:
            cache = self._daily_outputs[key] = {}
            while len(self._daily_outputs) > DAILY_CACHE_SIZE:
                self._daily_outputs.popitem(last=False)
        return EngineContext(self.settings, snapshot, self.models, self._sequence(snapshot), cache)

    def stamp(self, ctx: EngineContext, data: BlockData) -> SignalBlock:
        """The block for ``data``: packed once, stamps, models used, degraded reasons, digest
        of data. Data beyond the block limits (a NaN, too large) is refused here, before it
        is published: the snapshot is dead-lettered with the reason."""
        packed = pack_data(data)
        problem = packed_limit_problem(
            packed, self.settings.block_max_bytes, self.engine, lambda: msgspec.json.encode(data)
        )
        if problem is not None:
            raise Rejected(f"refused at the producer: {problem}")
        used, degraded = provenance_summary(data)
        refs: list[ModelRef] = [ctx.models.loaded[n].ref for n in sorted(used)]
        return build_block(
            self.engine,
            ctx.snapshot,
            data,
            packed,
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
            raw = replies.hget_bytes(self.client, streams.DAILY_FEATURES, day)
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
            model = _load_model(self.settings.model_dir, name)
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
        at most every RELOAD_CHECK_S. Loads happen between batches, so no block is missed."""
        if self.dated is not None:  # a walk-forward registry is fixed while it serves
            return
        now = time.monotonic()
        if not force and now - self._last_reload_check < RELOAD_CHECK_S:
            return
        self._last_reload_check = now
        wanted: set[str] = set()
        for raw_id, fields in replies.xread(
            self.client, streams.MODEL_EVENTS, self._models_cursor, count=100
        ):
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
        newest = replies.xrevrange(self.client, stream, count=1)
        return newest[0][0].decode() if newest else "0-0"

    def on_idle(self) -> None:
        self._check_for_new_models()

    def after_batch(self) -> None:
        # after the blocks are out, not before: the check's Redis read and file reads (once a
        # second) stay off the live path; a new version serves from the next batch on
        self._check_for_new_models()

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
        } | (
            {}
            if self.chains is None
            else {
                "chains_refused": self.chains.rejected,
                "last_chain_refused": self.chains.last_rejection,
                "chain_held_back": self.chains.held_back(),
            }
        )
