"""Issue 10, findings 4, 7, 9 and 14 on a real Redis: the AOF tail cut after a crash (the
hole is detected and re-published), trimming never drops an unread entry, holes are seen by
features, dead letters stay small, and the claim lease and dead-consumer removal."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import pytest
import redis

from services.ingest.main import IngestService
from services.ingest.publisher import HoleRepairingPublisher
from services.ingest.sources.ordering import event_order
from shared.bus import replies, streams
from shared.bus.publish import Bus
from shared.bus.retention import OwnStreamTrim
from shared.bus.worker import StreamWorker, read_health
from shared.config import Settings
from shared.contract.codec import encode
from shared.contract.schemas import Bar, DeadLetter, Message, ModelPublished
from shared.market import calendar
from shared.redis_ops.server import RedisServer
from tests.block_factory import AS_OF, make_block
from tests.bus_reads import add, decoded, messages
from tests.gateway_harness import publish
from tests.pipeline import feature_payloads, run_features
from tests.ports import free_port
from tests.test_bus_trust import real_bars
from tests.test_ingest_service import StubSource
from tests.waiting import wait_for


def incr_aof(data_dir: Path) -> Path:
    """The file Redis appends commands to (Redis 7: appendonlydir/*.incr.aof)."""
    found = sorted(data_dir.glob("appendonlydir/*.incr.aof")) or [data_dir / "appendonly.aof"]
    return found[-1]


def series_entries(client: redis.Redis) -> list[tuple[int, int]]:
    """(sequence number, open_time) of every NIFTY 1m entry on aegis:bars."""
    rows = []
    for _, fields in replies.xrange(client, streams.BARS):
        bar = decoded(fields, Bar)
        if bar.interval == "1m":
            rows.append((int(fields[b"s"]), bar.open_time))
    return rows


@pytest.mark.slow
def test_aof_cut_after_a_crash_is_detected_and_republished(tmp_path: Path) -> None:
    """Finding 4: Redis killed, the tail of its AOF cut (what everysec may lose on a power
    failure), restarted: the next publish notices Redis holds less than it was given and
    re-publishes the lost bars; the stream is whole and features sees no hole."""
    # fsync always: the AOF holds every reply's commands when it returns, so the cut is
    # exactly the second batch (with everysec a busy box may postpone the write)
    server = RedisServer(
        free_port(), "aof-secret", tmp_path / "redis", appendfsync="always"
    ).start()
    settings = Settings(redis_url=server.url, embedded_redis=False, clock="event", block_ms=100)
    minutes = [b for b in real_bars() if b.interval == "1m"][:600]
    try:
        client = server.client()
        publisher = HoleRepairingPublisher(Bus(client, settings), 10_000, lambda reason: None)
        publisher.publish(minutes[:200])
        kept_bytes = incr_aof(server.data_dir).stat().st_size
        publisher.publish(minutes[200:400])
        server.kill()
        with incr_aof(server.data_dir).open("r+b") as aof:
            aof.truncate(kept_bytes)
        server.start()
        client = server.client()
        assert len(series_entries(client)) == 200  # Redis lost 200 acknowledged bars
        publisher.bus = Bus(client, settings)
        results = publisher.publish(minutes[400:])
        assert all(r.outcome == "published" for r in results)
        assert publisher.holes == 1 and publisher.republished == 200
        rows = series_entries(client)
        assert [s for s, _ in rows] == list(range(1, 601))
        assert [t for _, t in rows] == [b.open_time for b in minutes]
    finally:
        server.stop()


@pytest.mark.slow
def test_a_republish_after_loss_goes_back_in_event_order_across_series(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """Redis loses everything (a flush) after daily and minute bars of several series were
    published: the next publish re-sends them merged in event order, not series by series,
    so the features worker finds none older than one it already applied."""
    bars = sorted(real_bars(), key=event_order)[:800]
    assert len({(b.symbol, b.interval) for b in bars}) >= 3
    publisher = HoleRepairingPublisher(Bus(redis_client, settings), 10_000, lambda reason: None)
    publisher.publish(bars)
    redis_client.flushall()
    publisher.publish([])
    assert publisher.republished == len(bars)
    resent = messages(redis_client, streams.BARS, Bar)
    assert resent == bars


@pytest.mark.slow
def test_a_loss_beyond_the_buffer_is_dead_lettered_and_degrades_ingest(
    settings: Settings, redis_client: redis.Redis
) -> None:
    minutes = [b for b in real_bars() if b.interval == "1m"][:300]
    ingest = IngestService(settings.model_copy(update={"republish_buffer": 50}), StubSource())
    ingest.publisher.publish(minutes[:200])
    # what a cut AOF leaves: the series state and stream of 100 bars ago
    key = streams.series_state("NIFTY", "1m")
    redis_client.hset(key, mapping={"seq": 100, "open_time": minutes[99].open_time})
    for bar in minutes[100:200]:
        day = calendar.ist_date(bar.open_time).isoformat()
        redis_client.hdel(streams.series_digests("NIFTY", "1m", day), bar.open_time)
    ingest.publisher.publish(minutes[200:])
    assert ingest.publisher.unrecoverable == 50 and ingest.publisher.republished == 50
    letter = messages(redis_client, streams.DEAD_LETTER, DeadLetter)[0]
    assert "lost 100 entries" in letter.reason and "replay the source" in letter.reason
    ingest._write_health(force=True)
    report = next(r for r in read_health(redis_client) if r["service"] == "ingest")
    assert report["status"] == "degraded" and report["lost_unrecoverable"] == 50


@pytest.mark.slow
def test_features_reports_a_hole_in_a_series(settings: Settings, redis_client: redis.Redis) -> None:
    bars = real_bars()
    Bus(redis_client, settings).publish_bars(bars)
    ids = [
        i for i, f in replies.xrange(redis_client, streams.BARS) if decoded(f, Bar).interval == "1m"
    ]
    redis_client.xdel(streams.BARS, *ids[100:103])  # lost, never re-published
    worker = run_features(settings)
    assert worker.missing_entries == 3
    report = next(r for r in read_health(redis_client) if r["service"] == "features")
    assert report["status"] == "degraded"
    assert "3 entries of NIFTY:1m missing" in report["degraded_reasons"][0]


@pytest.mark.slow
def test_trimming_never_drops_an_unread_entry(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """Finding 7: with a MAXLEN far below the backlog, every bar still reaches features;
    the writer of each stream trims it (ingest the bars, features the snapshots), waiting for
    the slowest group, and a backlog above the limit degrades the writer's health."""
    bars = real_bars()
    Bus(redis_client, settings).publish_bars(bars)
    run_features(settings)
    reference = feature_payloads(redis_client)
    redis_client.flushall()

    small = settings.model_copy(update={"stream_maxlen": 200})
    Bus(redis_client, small).publish_bars(bars)
    assert redis_client.xlen(streams.BARS) == len(bars)  # nothing trimmed before it is read
    redis_client.xgroup_create(streams.BARS, "audit", id="0")  # a second, slower group
    redis_client.xgroup_create(streams.FEATURES, "direction", id="0", mkstream=True)
    worker = run_features(small)
    assert feature_payloads(redis_client) == reference  # the input is never trimmed by it
    snapshots = redis_client.xlen(streams.FEATURES)
    worker._last_maintenance = 0
    worker._maintain_group()
    assert redis_client.xlen(streams.FEATURES) == snapshots  # direction has read nothing
    worker._write_health(force=True)
    report = next(r for r in read_health(redis_client) if r["service"] == "features")
    assert any("aegis:features holds" in r for r in report["degraded_reasons"])

    bars_trim = OwnStreamTrim(streams.BARS, small.stream_maxlen)  # ingest's
    assert bars_trim.trim(redis_client).trimmed == 0  # audit has read nothing
    assert bars_trim.degraded_reason() is not None
    published_ids = [i for i, _ in replies.xrange(redis_client, streams.BARS)]
    read = replies.xreadgroup(redis_client, "audit", "a1", streams.BARS, ">", count=1000)
    redis_client.xack(streams.BARS, "audit", *[i for i, _ in read])
    bars_trim.trim(redis_client)
    # exactly the 1,000 entries both groups acknowledged are gone; the first unread one stays
    assert [i for i, _ in replies.xrange(redis_client, streams.BARS)] == published_ids[1000:]

    read = replies.xreadgroup(redis_client, "direction", "d1", streams.FEATURES, ">", count=100)
    redis_client.xack(streams.FEATURES, "direction", *[i for i, _ in read])
    worker._last_maintenance = 0
    worker._maintain_group()
    assert redis_client.xlen(streams.FEATURES) == snapshots - 100


def test_dead_letters_keep_a_bounded_excerpt(settings: Settings, redis_client: redis.Redis) -> None:
    """Finding 9: twenty 1 MiB entries do not become 20 MiB of dead letters."""
    bus = Bus(redis_client, settings)
    for _ in range(20):
        bus.dead_letter(
            origin_stream=streams.BARS,
            origin_id="1-0",
            service="test",
            reason="oversized",
            payload=b"x" * (1 << 20),
        )
    letters = messages(redis_client, streams.DEAD_LETTER, DeadLetter)
    assert all(len(d.payload) == settings.dead_letter_excerpt_bytes for d in letters)
    assert all(d.payload_size == 1 << 20 for d in letters)
    used = redis_client.memory_usage(streams.DEAD_LETTER)
    assert used is not None and used < 20 * 2 * settings.dead_letter_excerpt_bytes


class SlowWorker(StreamWorker):
    """Takes ``delay_s`` per message (a long batch); records who handled what."""

    service = "slow"
    input_stream = "aegis:test:slow"
    handled: list[tuple[str, str]]

    def __init__(self, settings: Settings, consumer: str, delay_s: float) -> None:
        super().__init__(settings, consumer)
        self.delay_s = delay_s
        self.handled = []

    def handle(self, message: Message, entry_id: str) -> Iterable[Message]:
        self.stop_event.wait(self.delay_s)  # simulated work
        self.handled.append((self.consumer, entry_id))
        return []


def events(client: redis.Redis, count: int) -> None:
    for i in range(count):
        add(
            client,
            SlowWorker.input_stream,
            encode(ModelPublished(name="m", version=str(i), path="p")),
        )


@pytest.mark.slow
def test_a_long_batch_keeps_its_entries_and_a_dead_replicas_move_within_5_s(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """Finding 14: a healthy worker whose batch outlasts claim_idle_ms is not robbed (its
    lease renews the entries); a dead consumer's entries move in under 5 s with the default
    claim idle, and the dead consumer is then removed from the group."""
    cfg = settings.model_copy(update={"claim_idle_ms": 600, "read_count": 8})
    redis_client.xgroup_create(SlowWorker.input_stream, "slow", id="0", mkstream=True)
    events(redis_client, 8)
    busy = SlowWorker(cfg, "busy", delay_s=0.4)  # 3.2 s for the batch, > 5 x claim idle
    other = SlowWorker(cfg, "other", delay_s=0.0)
    threads = [threading.Thread(target=w.run, kwargs={"max_idle_reads": 30}) for w in (busy, other)]
    threads[0].start()
    wait_for(lambda: redis_client.xpending(SlowWorker.input_stream, "slow")["pending"] == 8)
    threads[1].start()
    for t in threads:
        t.join(timeout=60)
    assert len(busy.handled) == 8 and other.handled == []
    assert other.stats["claimed"] == 0 and busy._lease.renewals >= 3

    # a replica that read entries and died: no health report, nothing acknowledged
    defaults = settings.model_copy(update={"claim_idle_ms": Settings().claim_idle_ms})
    events(redis_client, 5)
    redis_client.xreadgroup("slow", "dead-1", {SlowWorker.input_stream: ">"}, count=5)
    died = time.monotonic()
    survivor = SlowWorker(defaults, "survivor", delay_s=0.0)
    thread = threading.Thread(target=survivor.run)
    thread.start()
    try:
        wait_for(lambda: len(survivor.handled) == 5, timeout_s=10, message="claimed")
        moved_after = time.monotonic() - died
        wait_for(
            lambda: (
                "dead-1"
                not in {
                    c["name"].decode()
                    for c in redis_client.xinfo_consumers(SlowWorker.input_stream, "slow")
                }
            ),
            timeout_s=10,
            message="dead consumer removed",
        )
    finally:
        survivor.stop()
        thread.join(timeout=10)
    assert moved_after < 5.0, moved_after
    assert survivor.stats["consumers_removed"] >= 1


@pytest.mark.slow
def test_a_killed_features_worker_s_bars_move_within_5_s(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """Finding 14: two features processes (ordered: they take turns); one is SIGKILLed while
    it holds bars; with the default claim idle the other has claimed them less than 5 s
    later, and the dead consumer then leaves the group. The standby is paused while the bars
    arrive, so the victim is the one holding them (otherwise either may take them all)."""
    from tests.test_replay_pipeline import features_process

    claim_idle_ms = Settings().claim_idle_ms
    victim = features_process(settings, "features-a", claim_idle_ms=claim_idle_ms)
    standby = features_process(settings, "features-b", claim_idle_ms=claim_idle_ms)
    try:
        wait_for(
            lambda: (
                {r["consumer"] for r in read_health(redis_client)} >= {"features-a", "features-b"}
            ),
            timeout_s=120,
            message="both started",
        )
        standby.send_signal(signal.SIGSTOP)
        Bus(redis_client, settings).publish_bars(real_bars())

        def killed_holding() -> bool:
            victim.send_signal(signal.SIGSTOP)
            held = redis_client.xpending_range(
                streams.BARS, "features", "-", "+", 10, consumername="features-a"
            )
            if held:
                victim.kill()
                return True
            victim.send_signal(signal.SIGCONT)
            return False

        wait_for(killed_holding, timeout_s=60, interval_s=0.005, message="a holding bars")
        killed = time.monotonic()
        standby.send_signal(signal.SIGCONT)
        wait_for(
            lambda: (
                not redis_client.xpending_range(
                    streams.BARS, "features", "-", "+", 10, consumername="features-a"
                )
            ),
            timeout_s=30,
            interval_s=0.01,
            message="a's bars claimed",
        )
        took = time.monotonic() - killed
        wait_for(
            lambda: (
                b"features-a"
                not in {c["name"] for c in redis_client.xinfo_consumers(streams.BARS, "features")}
            ),
            timeout_s=30,
            message="a removed from the group",
        )
    finally:
        for proc in (victim, standby):
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    assert took < 5.0, took


def test_a_lost_group_is_recreated_and_the_new_entries_processed(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """The group is created once at start, not before every read; when the stream and its
    group vanish (deleted, or a Redis that lost its data), the worker recreates them and goes
    on with what arrives."""
    worker = SlowWorker(settings, "w1", delay_s=0.0)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        events(redis_client, 3)
        wait_for(lambda: len(worker.handled) == 3, message="first entries")
        redis_client.delete(SlowWorker.input_stream)
        events(redis_client, 2)  # a new stream, without the group
        wait_for(lambda: len(worker.handled) == 5, message="entries after the group was lost")
    finally:
        worker.stop()
        thread.join(timeout=10)
    groups = redis_client.xinfo_groups(SlowWorker.input_stream)
    assert [g["name"] for g in groups] == [SlowWorker.service.encode()]


class BlockReader(StreamWorker):
    """A consumer group on the block stream, as the alerts service has."""

    service = "block-reader"
    input_stream = streams.BLOCKS

    def handle(self, message: Message, entry_id: str) -> Iterable[Message]:
        return []


def test_a_group_on_the_block_stream_never_trims_it(
    settings: Settings, redis_client: redis.Redis
) -> None:
    """aegis:blocks is capped where it is written (AEGIS_BLOCKS_MAXLEN) and read with plain
    XREAD by the gateway and the history API: a consumer group on it (alerts) must not trim
    it to AEGIS_STREAM_MAXLEN once it has acknowledged, as a year replay's blocks showed."""
    small = settings.model_copy(update={"stream_maxlen": 2})
    publish(small, *(make_block("market", as_of=AS_OF + 60 * i) for i in range(20)))
    worker = BlockReader(small, consumer="r1")
    worker.run(max_idle_reads=1)
    assert worker.stats["processed"] == 20
    worker._last_maintenance = 0.0
    worker._maintain_group()
    assert redis_client.xlen(streams.BLOCKS) == 20
