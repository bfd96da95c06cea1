"""The three engines against a real Redis: blocks, provenance, degraded health, chains,
idempotency, intraday reuse of the daily sequence, hot reload."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from services.buyer.main import BuyerWorker
from services.direction.main import DirectionWorker
from services.seller.main import SellerWorker
from shared.bus import replies, streams
from shared.bus.engine import EngineWorker
from shared.bus.publish import Bus
from shared.config import Settings
from shared.contract.blocks import walk_provenance
from shared.contract.codec import decode, pack
from shared.contract.schemas import FeatureSnapshot, SignalBlock
from shared.features.daily import FEATURE_NAMES
from shared.models import registry
from shared.signals.max_pain import compute_max_pain
from tests.block_factory import typed_data
from tests.engines_support import chains, daily_snapshot, intraday_snapshot
from tests.narrowing import every
from tests.waiting import wait_for

ENGINES: tuple[type[EngineWorker], ...] = (DirectionWorker, SellerWorker, BuyerWorker)


@contextmanager
def running(
    worker_cls: type[EngineWorker], settings: Settings, consumer: str = "t1"
) -> Iterator[EngineWorker]:
    worker = worker_cls(settings, consumer=consumer)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(timeout=10)
        assert not thread.is_alive(), f"{worker.service} worker did not stop"


def blocks(client: redis.Redis, engine: str | None = None) -> list[SignalBlock]:
    out = [decode(fields) for _, fields in replies.xrange(client, streams.BLOCKS)]
    return [b for b in out if isinstance(b, SignalBlock) and (engine is None or b.engine == engine)]


def wait_blocks(client: redis.Redis, engine: str, count: int) -> list[SignalBlock]:
    return wait_for(
        lambda: (lambda b: b if len(b) >= count else None)(blocks(client, engine)),
        timeout_s=30,
        message=f"{count} {engine} blocks",
    )


def health(client: redis.Redis, service: str, consumer: str) -> dict[str, Any] | None:
    raw = replies.get_bytes(client, streams.health(service, consumer))
    return orjson.loads(raw) if raw else None


def publish_stats(model_dir: Path, version: str, z_lower: float) -> None:
    """A minimal real ``stats`` model, published through the registry (sha256 manifest)."""
    from services.buyer.compute import GAMMA_BLOCKS

    window = "2010-01-01..2020-12-31"
    params = {
        "coverage_target": 0.9,
        "safe_range": {"ALL": {"z_lower": z_lower, "z_upper": 1.3}},
        "hit_rate": {"ALL": {"value": 0.91, "window": window, "samples": 520}},
        "spike_rate": {"ALL": {"value": 0.06, "window": window, "samples": 2700}},
        "gamma_windows": [
            {"block": b, "score": round(1 / len(GAMMA_BLOCKS), 4), "window": window}
            for b in GAMMA_BLOCKS
        ],
    }

    def write(directory: Path) -> None:
        (directory / "params.json").write_text(json.dumps(params))

    registry.publish(
        model_dir,
        "stats",
        version,
        write,
        {
            "training_window": {"start": "2010-01-01", "end": "2020-12-31"},
            "features": {"daily": list(FEATURE_NAMES)},
        },
    )


def sources(block: SignalBlock) -> dict[str, str]:
    return {path: prov.source for path, prov in walk_provenance(typed_data(block))}


@pytest.mark.parametrize("worker_cls", ENGINES, ids=lambda c: c.engine)
def test_missing_models_degrade_loudly(
    worker_cls: type[EngineWorker], settings: Settings, redis_client: redis.Redis
) -> None:
    """No model in the registry: every engine still publishes, marks heuristic values and
    reports degraded health with the reason."""
    Bus(redis_client, settings).publish(daily_snapshot("2024-03-15"))
    with running(worker_cls, settings) as worker:
        (block,) = wait_blocks(redis_client, worker.engine, 1)
        report = wait_for(lambda: health(redis_client, worker.service, "t1"), message="health")
    assert report["status"] == "degraded"
    assert any("unavailable" in r for r in report["degraded_reasons"])
    assert "heuristic" in sources(block).values()
    assert block.degraded and all(":" in reason for reason in block.degraded)
    assert block.kind == "daily" and block.freshness_limit_s == settings.freshness_daily_s
    assert block.as_of == daily_snapshot("2024-03-15").as_of


def test_corrupt_model_degrades_and_valid_one_is_used(
    settings: Settings, redis_client: redis.Redis
) -> None:
    publish_stats(settings.model_dir, "v1", 1.9)
    (settings.model_dir / "stats" / "v1" / "params.json").write_text("{tampered")
    Bus(redis_client, settings).publish(daily_snapshot("2024-03-15"))
    with running(SellerWorker, settings) as worker:
        (block,) = wait_blocks(redis_client, "seller", 1)
        report = wait_for(lambda: health(redis_client, "seller", "t1"), message="health")
        assert "stats" in worker.models.errors
    assert report["status"] == "degraded"
    assert any("stats" in r and "sha256" in r for r in report["degraded_reasons"])
    assert block.data["safe_range"]["provenance"]["source"] == "heuristic"
    assert block.data["historical_hit_rate"]["value"] is None  # no rate invented
    # the range carries what it was made at: the history's scorecard scores it from these
    snapshot = daily_snapshot("2024-03-15")
    assert block.data["safe_range"]["spot"] == round(snapshot.spot, 2)
    vix = snapshot.daily["vix"]
    assert vix is not None and block.data["safe_range"]["vix"] == round(vix, 4)


def test_stats_model_path_and_hot_reload(settings: Settings, redis_client: redis.Redis) -> None:
    """A real stats model is used with its version; publishing a new version (registry +
    ModelPublished) swaps it in without a restart and without losing a snapshot."""
    publish_stats(settings.model_dir, "v1", 1.9)
    bus = Bus(redis_client, settings)
    days = ["2024-03-11", "2024-03-12", "2024-03-13", "2024-03-14"]
    bus.publish(daily_snapshot(days[0]))
    with running(SellerWorker, settings):
        (first,) = wait_blocks(redis_client, "seller", 1)
        assert first.data["safe_range"]["provenance"] == {
            "source": "model",
            "model": "stats",
            "version": "v1",
            "in_sample": False,
            "formula": first.data["safe_range"]["provenance"]["formula"],
        }
        assert [m.version for m in first.models] == ["v1"]
        assert first.data["historical_hit_rate"]["value"] == 0.91
        assert first.data["safe_range"]["z_lower"] == 1.9

        def write_v2(directory: Path) -> None:
            v1 = (settings.model_dir / "stats" / "v1" / "params.json").read_text()
            (directory / "params.json").write_text(v1.replace('"z_lower": 1.9', '"z_lower": 2.1'))

        registry.announce(
            bus,
            registry.publish(
                settings.model_dir,
                "stats",
                "v2",
                write_v2,
                {
                    "training_window": {"start": "2010-01-01", "end": "2021-12-31"},
                    "features": {"daily": list(FEATURE_NAMES)},
                },
            ),
        )
        published = iter(days[1:] * 20)

        def reloaded() -> SignalBlock | None:
            """Keep the snapshots coming until one is computed with v2 (no restart)."""
            bus.publish(daily_snapshot(next(published)))
            return next(
                (
                    b
                    for b in blocks(redis_client, "seller")
                    if b.models and b.models[0].version == "v2"
                ),
                None,
            )

        latest = wait_for(reloaded, interval_s=0.2, message="a block made with stats v2")
        total = len(replies.xrange(redis_client, streams.FEATURES))
        wait_blocks(redis_client, "seller", total)  # every snapshot got its block: no gap
    assert latest.data["safe_range"]["z_lower"] == 2.1
    versions = [b.models[0].version for b in blocks(redis_client, "seller")]
    assert versions == sorted(versions)  # v1 ... v1, v2 ... v2: one atomic swap


def test_blocks_are_idempotent_per_snapshot(settings: Settings, redis_client: redis.Redis) -> None:
    bus = Bus(redis_client, settings)
    snap = daily_snapshot("2023-08-10")
    bus.publish(snap)
    bus.publish(snap)
    with running(BuyerWorker, settings), running(DirectionWorker, settings):
        for engine in ("buyer", "direction"):
            a, b = wait_blocks(redis_client, engine, 2)
            assert a.digest == b.digest and a.data == b.data


@pytest.mark.parametrize("worker_cls", ENGINES, ids=lambda c: c.engine)
def test_values_move_with_the_market(
    worker_cls: type[EngineWorker], settings: Settings, redis_client: redis.Redis
) -> None:
    """Two different real weeks (calm 2019, the March 2020 crash) give different blocks."""
    bus = Bus(redis_client, settings)
    calm, crash = daily_snapshot("2019-12-20"), daily_snapshot("2020-03-23")
    bus.publish(calm)
    bus.publish(crash)
    with running(worker_cls, settings) as worker:
        a, b = wait_blocks(redis_client, worker.engine, 2)
    changed = [k for k in a.data if a.data[k] != b.data[k]]
    assert len(changed) >= len(a.data) - 3, changed  # nothing frozen beyond regime-like labels
    if worker.engine == "seller":
        assert a.data["trap"]["score"] != b.data["trap"]["score"]
        assert a.data["expiry_stress"]["score"] != b.data["expiry_stress"]["score"]
        assert (
            b.data["safe_range"]["upper"] - b.data["safe_range"]["lower"]
            > a.data["safe_range"]["upper"] - a.data["safe_range"]["lower"]
        )
    if worker.engine == "direction":
        assert b.data["risk_score"]["value"] > a.data["risk_score"]["value"]
    if worker.engine == "buyer":
        assert a.data["breakout_levels"] != b.data["breakout_levels"]


def test_intraday_snapshot_uses_daily_sequence_and_detects_breakout(
    settings: Settings, redis_client: redis.Redis
) -> None:
    daily = daily_snapshot("2024-03-14")
    redis_client.hset(
        streams.DAILY_FEATURES, daily.daily_as_of, pack(daily.model_dump(mode="python"))
    )
    atr = daily.daily["atr_14"]
    assert atr is not None
    broke = intraday_snapshot("2024-03-14", 90, drift_points=+3 * atr)
    quiet = intraday_snapshot("2024-03-14", 30, drift_points=0.0)
    bus = Bus(redis_client, settings)
    bus.publish(broke)
    bus.publish(quiet)
    with running(BuyerWorker, settings), running(SellerWorker, settings):
        b_broke, b_quiet = wait_blocks(redis_client, "buyer", 2)
        s_block = wait_blocks(redis_client, "seller", 2)[0]
    assert b_broke.kind == "intraday" and b_broke.freshness_limit_s == settings.freshness_intraday_s
    assert b_broke.data["breakout_today"]["score"] == 1.0
    assert b_broke.data["breakout_today"]["broken"] == "up"
    assert b_broke.data["breakout_today"]["provenance"]["source"] == "data"
    assert b_quiet.data["breakout_today"]["broken"] is None
    assert b_quiet.data["breakout_today"]["score"] < 1.0
    assert b_quiet.data["breakout_today"]["basis"] == "rest of today's session"  # heuristic
    assert s_block.data["skew"]["method"] == "return_distribution"  # sequence came from the hash


def test_seller_max_pain_from_real_chains(settings: Settings, redis_client: redis.Redis) -> None:
    """Chains arrive on aegis:chains; max pain, the chain skew and the chain group all read
    the target expiry's fresh chain at or before the snapshot (one chain per block); before
    any chain, or for an expiry no chain is held of, max pain is null with the reason."""
    bus = Bus(redis_client, settings)
    real = chains(limit=40)
    for chain in real:
        bus.publish(chain)
    base = daily_snapshot("2025-06-27")
    picked = real[25]

    def at(epoch_s: int, session: str, expiry: str) -> FeatureSnapshot:
        update = {"as_of": epoch_s, "session_date": session, "next_expiry": expiry}
        return base.model_copy(update=update)

    bus.publish(at(picked.snapshot_time, "2026-01-22", picked.expiry))
    bus.publish(at(real[0].snapshot_time - 60, "2026-01-22", picked.expiry))
    bus.publish(at(picked.snapshot_time, "2026-01-22", "2026-03-03"))  # none held of it
    with running(SellerWorker, settings):
        with_chain, before, other = wait_blocks(redis_client, "seller", 3)
    expected = compute_max_pain(picked.quotes)
    assert expected is not None
    assert with_chain.data["max_pain"]["strike"] == expected.strike
    assert with_chain.data["max_pain"]["expiry"] == picked.expiry
    assert with_chain.data["chain"]["max_pain"]["strike"] == expected.strike
    assert with_chain.data["skew"]["method"] == "chain_iv"
    assert with_chain.data["max_pain"]["provenance"]["source"] == "data"
    assert "is after this snapshot" in before.data["max_pain"]["reason"]
    assert "no option chain of the target expiry 2026-03-03" in other.data["max_pain"]["reason"]
    for block in (before, other):
        assert block.data["max_pain"]["strike"] is None
        assert block.data["chain"]["reason"] == block.data["max_pain"]["reason"]


def test_a_model_call_failure_clears_once_the_model_works_again(
    settings: Settings, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish_stats(settings.model_dir, "v1", 1.9)
    worker = SellerWorker(settings, consumer="t1")
    stats = worker.models.get("stats")
    assert stats is not None
    real_z = stats.safe_range_z
    monkeypatch.setattr(stats, "safe_range_z", lambda regime: 1 / 0)
    (failed,) = every(worker.handle(daily_snapshot("2024-03-14"), "1-0"), SignalBlock)
    assert any("stats call failed" in r for r in worker.degraded_reasons())
    assert sources(failed)["safe_range"] == "heuristic"
    monkeypatch.setattr(stats, "safe_range_z", real_z)
    (recovered,) = every(worker.handle(daily_snapshot("2024-03-15"), "2-0"), SignalBlock)
    assert sources(recovered)["safe_range"] == "model"
    assert not any("call failed" in r for r in worker.degraded_reasons())
