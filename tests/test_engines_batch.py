"""Engines compute a whole read batch at once (one model call per batch): the blocks equal
one-by-one computation byte for byte, a poisoned message in a batch is dead-lettered alone,
and the pure compute modules import nothing that touches Redis."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import redis

from shared.bus import replies, streams
from shared.bus.engine import EngineWorker
from shared.bus.publish import Bus
from shared.config import PROJECT_ROOT, Settings
from shared.contract.codec import decode, encode, pack
from shared.contract.schemas import (
    SCHEMA_VERSION,
    Bar,
    DeadLetter,
    FeatureSnapshot,
    Message,
    ModelRef,
    SignalBlock,
)
from shared.models.context import EngineContext, ModelBook, run_batched
from tests.bus_reads import add, messages
from tests.engines_support import chains, daily_snapshot, intraday_snapshot
from tests.models_support import trained_registry
from tests.narrowing import every
from tests.test_engines import ENGINES

pytestmark = pytest.mark.slow

DAYS = ("2021-03-04", "2021-03-05")


def snapshots() -> list[FeatureSnapshot]:
    """Two sessions: each daily close, then intraday snapshots of the following session
    (minutes chosen to include a breakout and the first minute)."""
    out: list[FeatureSnapshot] = []
    for day in DAYS:
        out.append(daily_snapshot(day))
        out += [
            intraday_snapshot(day, m, drift_points=d) for m, d in ((1, 0), (90, -40), (200, 250))
        ]
    return out


def store_sequences(client: redis.Redis, snaps: list[FeatureSnapshot]) -> None:
    """What the features worker stores: each daily snapshot by session date (the 60-session
    sequence intraday snapshots use)."""
    for snap in snaps:
        if snap.kind == "daily":
            client.hset(streams.DAILY_FEATURES, snap.session_date, pack(snap.model_dump()))


def model_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"model_dir": trained_registry()})


@pytest.mark.parametrize("worker_cls", ENGINES, ids=lambda c: c.engine)
def test_batched_blocks_equal_one_by_one_blocks(
    worker_cls: type[EngineWorker], settings: Settings, redis_client: redis.Redis
) -> None:
    settings = model_settings(settings)
    snaps = snapshots()
    store_sequences(redis_client, snaps)
    for chain in chains(limit=3):
        Bus(redis_client, settings).publish(chain)
    batch: list[tuple[Message, str]] = [(s, f"1-{i}") for i, s in enumerate(snaps)]

    batched_worker = worker_cls(settings, consumer="batch")
    batched = every(
        (out for outs in batched_worker.handle_batch(batch) for out in outs), SignalBlock
    )
    single_worker = worker_cls(settings, consumer="single")
    single = [out for message, entry_id in batch for out in single_worker.handle(message, entry_id)]

    assert len(batched) == len(snaps) == len(single)
    assert all(not b.degraded for b in batched), [b.degraded for b in batched]
    assert [encode(b)["d"] for b in batched] == [encode(b)["d"] for b in single]
    # the models really were used, and the breach curve is per snapshot, not shared
    assert {m.name for b in batched for m in b.models} == set(worker_cls.model_names)
    if worker_cls.engine == "seller":
        curves = [
            tuple(p["probability"] for p in b.data["breach_probabilities"]["points"])
            for b in batched
        ]
        assert len(set(curves)) > len(DAYS)


@pytest.mark.parametrize("worker_cls", ENGINES, ids=lambda c: c.engine)
def test_a_poisoned_message_in_a_batch_is_dead_lettered_alone(
    worker_cls: type[EngineWorker], settings: Settings, redis_client: redis.Redis
) -> None:
    settings = model_settings(settings)
    snaps = snapshots()
    store_sequences(redis_client, snaps)
    # Poison that decodes: a bar on the snapshot stream (every engine), and for the engines
    # that need the India VIX a snapshot without it (fails inside the batch computation).
    bar = Bar(
        symbol="NIFTY", interval="1m", open_time=1, open=1, high=1, low=1, close=1, source="t"
    )
    poison: list[Message] = [bar]
    if worker_cls.engine != "direction":
        poison.append(
            snaps[2].model_copy(update={"vix": None, "daily": {**snaps[2].daily, "vix": None}})
        )
    entries = (
        [encode(s) for s in snaps[:2]]
        + [encode(p) for p in poison]
        + [encode(s) for s in snaps[2:]]
    )
    entries.insert(6, {"t": "feature_snapshot", "v": SCHEMA_VERSION, "d": b"\xc1"})
    for fields in entries:
        add(redis_client, streams.FEATURES, fields)

    worker = worker_cls(settings, consumer="t1")
    worker.run(max_idle_reads=1)  # one XREADGROUP batch holds every entry

    blocks = [decode(f) for _, f in replies.xrange(redis_client, streams.BLOCKS)]
    mine = [b for b in blocks if isinstance(b, SignalBlock) and b.engine == worker.engine]
    assert [b.as_of for b in mine] == [s.as_of for s in snaps]
    letters = messages(redis_client, streams.DEAD_LETTER, DeadLetter)
    assert all(x.service == worker.service for x in letters)
    reasons = [x.reason for x in letters]
    assert len(reasons) == len(poison) + 1, reasons
    assert any("not msgpack" in r for r in reasons)
    assert any("expects feature_snapshot, got bar" in r for r in reasons)
    if worker_cls.engine != "direction":
        assert any("no India VIX" in r for r in reasons)
    assert worker.stats["batch_fallbacks"] == 1
    assert worker.stats["processed"] == len(snaps)
    pending = redis_client.xpending(streams.FEATURES, worker.group)["pending"]
    assert pending == 0


def test_compute_modules_import_nothing_that_touches_redis() -> None:
    code = (
        "import sys\n"
        "import services.direction.compute, services.seller.compute, services.buyer.compute\n"
        "bad = sorted(m for m in sys.modules if m == 'redis' or m in "
        "('shared.bus.engine', 'shared.bus.worker', 'shared.bus.publish'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


class RowModel:
    """A model whose batch call fails as soon as one row is bad (spot not positive)."""

    ref = ModelRef(name="row", version="v1", trained_at="2021-01-01")

    def __init__(self) -> None:
        self.calls: list[int] = []

    def in_sample(self, day: str) -> bool:
        return False

    def __call__(self, contexts: list[EngineContext]) -> list[float]:
        self.calls.append(len(contexts))
        spots = np.array([c.snapshot.spot for c in contexts])
        if (spots <= 0).any():
            raise ValueError("spot must be positive")
        return np.log(spots).tolist()


def test_a_failing_batched_model_call_falls_back_for_the_bad_snapshot_only() -> None:
    model = RowModel()
    snaps = [daily_snapshot(d) for d in DAYS]
    bad = snaps[0].model_copy(update={"spot": -1.0})
    contexts = [
        EngineContext(Settings(), s, ModelBook(loaded={"row": model}), None, {})
        for s in (snaps[0], bad, snaps[1])
    ]
    run_batched(contexts, "row", "row", lambda m, cs: m(cs))
    assert model.calls == [3, 1, 1, 1]  # the batch, then one at a time
    good = [contexts[0].batched["row"], contexts[2].batched["row"]]
    assert [o.value for o in good] == [np.log(s.spot) for s in snaps]
    assert all(o.ok and o.provenance.source == "model" for o in good)
    failed = contexts[1].batched["row"]
    assert not failed.ok and failed.problem is not None
    assert "spot must be positive" in failed.problem
    assert contexts[1].failures == {"row": failed.problem}
    assert not contexts[0].failures and "row" in contexts[0].succeeded
    # a context answered in a batch is not computed again
    assert contexts[2].batch_output("row", "row", lambda m, cs: m(cs)) is good[1]
    assert model.calls == [3, 1, 1, 1]
