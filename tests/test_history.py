"""The history store, on both databases it runs on: SQLite (the embedded default) and a real
PostgreSQL server; the history worker on a real Redis (a redelivered batch doubles
nothing); the series and time-travel API through the real gateway."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest
import redis
from alembic import command
from alembic.config import Config
from scipy.stats import norm
from sqlalchemy import column, select, table

from services.history.alerts_archive import AlertsArchiveWorker
from services.history.main import HistoryWorker
from shared.bus import replies, streams
from shared.config import Settings
from shared.contract.schemas import SignalBlock
from shared.history.retention import Retention
from shared.history.schema import block, series_point
from shared.history.scorecard import direction_scores, score_history, trap_scores
from shared.history.store import MIGRATIONS, HistoryStore, migrate, open_engine
from tests.block_factory import AS_OF, chain_minute, closing_day, make_block
from tests.gateway_harness import RunningGateway, publish
from tests.postgres_server import PostgresServer, binaries
from tests.processes import start_service
from tests.waiting import wait_for


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    if binaries() is None:  # as for Chromium: scripts/install-system-deps.sh installs it
        pytest.skip("PostgreSQL is not installed")
    with PostgresServer() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'history.sqlite3'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.new_database()


def day(spot_start: float) -> list[SignalBlock]:
    """Ten minutes of market and seller blocks, spot rising a point a minute."""
    out = []
    for i in range(10):
        as_of = AS_OF + 60 * i
        out += [
            make_block("market", as_of=as_of, spot=spot_start + i),
            make_block("seller", as_of=as_of, spot=spot_start + i),
        ]
    return out


def test_series_and_time_travel_on_both_databases(database_url: str) -> None:
    engine = open_engine(database_url)
    migrate(engine)
    migrate(engine)  # idempotent: a restarted worker migrates again
    store = HistoryStore(engine)
    blocks = day(25_000.0)
    assert store.write(blocks) == 20
    assert store.write(blocks[:6]) == 6  # redelivered: rewritten, not doubled
    assert store.span() == (AS_OF, AS_OF + 540, 20)

    spot = store.series("spot", AS_OF + 60, AS_OF + 300)
    assert [(p.as_of - AS_OF, p.value) for p in spot] == [
        (60 * i, 25_000.0 + i) for i in (1, 2, 3, 4, 5)
    ]
    stepped = store.series("spot", AS_OF, AS_OF + 540, step_s=300)
    assert [p.value for p in stepped] == [25_004.0, 25_009.0]  # the last of each 5 minutes
    lower = store.series("safe_lower", AS_OF, AS_OF + 540)
    assert len(lower) == 10 and lower[0].value == blocks[1].data["safe_range"]["lower"]

    then = store.blocks_at(AS_OF + 150)  # between two minutes: the earlier one
    assert set(then) == {"market", "seller"}
    assert then["market"] == blocks[4] and then["seller"] == blocks[5]
    assert store.blocks_at(AS_OF - 1) == {}
    engine.dispose()


def test_a_store_of_json_bodies_migrates_to_the_streams_bytes_on_both_databases(
    database_url: str,
) -> None:
    engine = open_engine(database_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")  # the first schema: bodies as JSON text
    blocks = day(25_100.0)
    first_schema = table("block", *(column(c) for c in ("engine", "as_of", "kind", "body")))
    with engine.begin() as connection:
        connection.execute(
            first_schema.insert(),
            [
                {"engine": b.engine, "as_of": b.as_of, "kind": b.kind, "body": b.model_dump_json()}
                for b in blocks
            ],
        )
    migrate(engine)
    store = HistoryStore(engine)
    assert store.blocks_between("seller", AS_OF, AS_OF + 540, limit=20) == blocks[1::2]
    assert store.blocks_at(AS_OF + 540) == {"market": blocks[-2], "seller": blocks[-1]}
    with engine.begin() as connection:  # and back, and forth again
        config.attributes["connection"] = connection
        command.downgrade(config, "0001")
    migrate(engine)
    assert store.blocks_at(AS_OF + 540) == {"market": blocks[-2], "seller": blocks[-1]}
    engine.dispose()


def minutes(start: int, count: int) -> list[SignalBlock]:
    """A market block a minute from ``start``, spot = its minute number + 1."""
    return [make_block("market", as_of=start + 60 * i, spot=float(i + 1)) for i in range(count)]


def test_old_detail_is_thinned_to_the_last_of_each_step_on_both_databases(
    database_url: str,
) -> None:
    store = HistoryStore(open_engine(database_url))
    migrate(store.engine)
    start = AS_OF - AS_OF % 900  # a quarter-hour boundary
    store.write(minutes(start, 60))
    cutoff = start + 1800  # thin the first half hour; keep the second whole
    assert store.downsample(0, cutoff, 900) == 3 * (30 - 2)  # blocks, spot and vix points
    assert store.downsample(0, cutoff, 900) == 0  # once per step
    spot = store.series("spot", start, start + 3600)
    assert [p.value for p in spot] == [15.0, 30.0, *map(float, range(31, 61))]
    assert len(store.series("vix", start, start + 3600)) == 32
    assert store.blocks_at(start + 600) == {}  # time travel there: the step's last block is later
    assert store.blocks_at(start + 900)["market"].data["spot"] == 15.0
    assert store.span() == (start + 840, start + 3540, 32)
    store.engine.dispose()


def test_the_worker_keeps_the_detail_of_the_last_days_in_stream_time(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    settings = settings.model_copy(
        update={"history_url": f"sqlite:///{tmp_path / 'h.sqlite3'}", "history_detail_days": 1}
    )
    start = AS_OF - AS_OF % 900 - 2 * 86_400
    old, recent = minutes(start, 30), minutes(start + 2 * 86_400, 30)
    publish(settings, *old, *recent)
    worker = HistoryWorker(settings, "history-1")
    worker.run(max_idle_reads=2)
    store = HistoryStore(open_engine(settings.history_url))
    assert [p.value for p in store.series("spot", start, start + 1800)] == [15.0, 30.0]
    assert len(store.series("spot", start + 2 * 86_400, start + 2 * 86_400 + 1800)) == 30
    assert worker.stats["rows_thinned"] == 3 * 28


def test_each_engine_is_thinned_on_its_own_stream_time_and_a_late_block_too(
    tmp_path: Path,
) -> None:
    """In a replay one engine can be a month behind another: the leader's time must not
    leave the laggard's old detail unthinned, and a block older than what was thinned (a
    lagging replica) gets its step thinned again."""
    store = HistoryStore(open_engine(f"sqlite:///{tmp_path / 'h.sqlite3'}"))
    migrate(store.engine)
    retention = Retention(detail_s=86_400, step_s=900)
    start = AS_OF - AS_OF % 900 - 2 * 86_400
    leader = minutes(start + 2 * 86_400, 30)
    store.write(leader)
    assert retention.advance(store, leader) == 0  # nothing of the leader is old yet
    laggard = [make_block("seller", as_of=start + 60 * i, spot=float(i + 1)) for i in range(30)]
    store.write(laggard)
    retention.advance(store, laggard)
    caught_up = [make_block("seller", as_of=start + 2 * 86_400 + 60 * i) for i in range(30)]
    store.write(caught_up)
    retention.advance(store, caught_up)
    thinned = store.blocks_between("seller", start, start + 1800, limit=100)
    assert [b.as_of for b in thinned] == [start + 840, start + 1740]
    late = [make_block("seller", as_of=start + 60)]
    store.write(late)
    assert retention.advance(store, late) > 0
    thinned = store.blocks_between("seller", start, start + 1800, limit=100)
    assert [b.as_of for b in thinned] == [start + 840, start + 1740]
    store.engine.dispose()


def test_the_worker_writes_every_block_once_across_a_redelivery(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    settings = settings.model_copy(update={"history_url": f"sqlite:///{tmp_path / 'h.sqlite3'}"})
    blocks = day(25_100.0)
    publish(settings, *blocks)
    HistoryWorker(settings, "history-1").run(max_idle_reads=2)
    store = HistoryStore(open_engine(settings.history_url))
    assert store.span() == (AS_OF, AS_OF + 540, 20)
    # a crash after the database commit, before the acknowledgement: everything comes again
    redis_client.xgroup_setid(streams.BLOCKS, "history", "0")
    again = HistoryWorker(settings, "history-2")
    again.run(max_idle_reads=2)
    assert again.stats["blocks_written"] == 20 and store.span() == (AS_OF, AS_OF + 540, 20)
    assert [p.value for p in store.series("spot", AS_OF, AS_OF + 540)] == [
        25_100.0 + i for i in range(10)
    ]


def test_the_alerts_are_kept_beside_the_blocks_and_a_bad_record_costs_only_itself(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    settings = settings.model_copy(update={"history_url": f"sqlite:///{tmp_path / 'h.sqlite3'}"})
    store = HistoryStore(open_engine(settings.history_url))
    migrate(store.engine)
    records = [
        {"id": f"pcr_band:{i}", "rule": "pcr_band", "severity": "info", "as_of": AS_OF + i}
        for i in range(3)
    ]
    for record in records[:2]:
        redis_client.xadd(streams.ALERTS, {"d": orjson.dumps(record)})
    redis_client.xadd(streams.ALERTS, {"d": b"not json"})
    redis_client.xadd(streams.ALERTS, {"d": orjson.dumps(records[2])})
    worker = AlertsArchiveWorker(settings, store, "history-1")
    worker.run(max_idle_reads=2)
    [(_, letter)] = replies.xrange(redis_client, streams.DEAD_LETTER)
    assert b"alert record is not JSON" in letter[b"d"]
    redis_client.xgroup_setid(streams.ALERTS, "history-alerts", "0")  # everything again
    worker.run(max_idle_reads=2)  # a redelivery: nothing doubles
    assert worker.stats["alerts_written"] == 2 * len(records)
    assert store.alerts_until(AS_OF + 10, limit=10) == records[::-1]
    assert store.alerts_until(AS_OF, limit=10) == records[:1]


def test_series_and_document_at_on_the_api(settings: Settings, tmp_path: Path) -> None:
    settings = settings.model_copy(update={"history_url": f"sqlite:///{tmp_path / 'h.sqlite3'}"})
    engine = open_engine(settings.history_url)
    migrate(engine)
    HistoryStore(engine).write(day(25_200.0))
    with RunningGateway(settings) as gw:
        got = httpx.get(
            gw.url + "/api/v1/series/spot", params={"start": AS_OF, "end": AS_OF + 120}
        ).json()
        assert got["points"] == [[AS_OF, 25_200.0], [AS_OF + 60, 25_201.0], [AS_OF + 120, 25_202.0]]
        assert got["unit"] == "index points" and "market block" in got["provenance"]["note"]
        assert httpx.get(gw.url + "/api/v1/series/nope?start=0&end=1").status_code == 404
        assert httpx.get(gw.url + f"/api/v1/series/spot?start={AS_OF}&end=0").status_code == 422
        doc = httpx.get(gw.url + "/api/v1/document/at", params={"t": AS_OF + 61}).json()
        assert doc["market"]["spot"] == 25_201.0 and doc["seller"]["stale"] is False
        assert "direction" not in doc


def test_the_scorecard_equals_an_offline_scoring_of_the_stored_forecasts(
    settings: Settings, tmp_path: Path
) -> None:
    days = pd.bdate_range("2025-06-02", periods=16)
    thursdays = [d for d in days if d.weekday() == 3]
    rng = np.random.default_rng(7)
    spots = 25_000 + np.cumsum(rng.normal(0, 250, len(days)))
    vixes = np.resize([9.0, 15.0, 21.0], len(days))
    frame = pd.DataFrame({"session": days, "spot": spots, "vix": vixes})
    frame["stress"] = rng.uniform(0, 1, len(days)).round(3)
    frame["expiry"] = [
        min(t for t in [*thursdays, days[-1] + pd.offsets.Week(weekday=3)] if t > d) for d in days
    ]
    settings = settings.model_copy(update={"history_url": f"sqlite:///{tmp_path / 'h.sqlite3'}"})
    store = HistoryStore(open_engine(settings.history_url))
    migrate(store.engine)
    for r in frame.itertuples():
        day, expiry = f"{r.session:%Y-%m-%d}", f"{r.expiry:%Y-%m-%d}"
        priced = 120.0 if r.Index % 2 else None  # every other close has a chain
        store.write(closing_day(day, r.spot, r.vix, expiry, r.stress, straddle_band=priced))

    # offline: each close's range against the expiry's close, once a later session exists
    close = frame.set_index("session")["spot"]
    settled = frame[frame["expiry"] < days[-1]].copy()
    settled["expiry_close"] = settled["expiry"].map(close)
    settled["inside"] = (settled["spot"] - 150 <= settled["expiry_close"]) & (
        settled["expiry_close"] <= settled["spot"] + 150
    )
    scale = settled["vix"] / 100 * np.sqrt((settled["expiry"] - settled["session"]).dt.days / 365)
    z = norm.ppf(0.95)
    band = (settled["expiry_close"] / settled["spot"]).apply(np.log).abs() <= z * scale
    with RunningGateway(settings) as gw:
        got = httpx.get(gw.url + "/api/v1/scorecard", params={"last": 5}).json()
        exported = httpx.get(gw.url + "/metrics").text
    card = got["safe_range"]
    assert card["all"]["scored"] == len(settled) > 8
    assert card["all"]["inside"] == int(settled["inside"].sum())
    assert 0 < card["all"]["inside"] < len(settled)  # both hits and misses in this path
    assert card["all"]["vix_band_inside"] == int(band.sum())
    priced = settled[settled.index % 2 == 1]
    moved = (priced["expiry_close"] - priced["spot"]).abs()
    assert card["all"]["straddle_band_scored"] == len(priced) > 3
    assert card["all"]["straddle_band_inside"] == int((moved <= 120).sum())
    assert card["all"]["inside_where_straddle_scored"] == int(priced["inside"].sum())
    assert card["last"]["inside"] == int(settled["inside"].tail(5).sum())
    assert [c["inside"] for c in got["closes"]] == settled["inside"].tail(5).tolist()
    # breach: each close's four strikes against the expiry close, beside the VIX lognormal
    model, lognormal = [], []
    for r in settled.itertuples():
        scale = r.vix / 100 * np.sqrt((r.expiry - r.session).days / 365)
        for gap, p in ((100, 0.3), (200, 0.1)):
            for strike in (r.spot + gap, r.spot - gap):
                hit = r.expiry_close > strike if strike > r.spot else r.expiry_close < strike
                model.append((p - hit) ** 2)
                lognormal.append((norm.sf(abs(np.log(strike / r.spot)) / scale) - hit) ** 2)
    # /metrics exports the same figures
    hit_rate = settled["inside"].mean()
    line = 'aegis_scorecard_safe_range_hit_rate{range="published",window="all"} '
    assert float(exported.split(line)[1].split()[0]) == pytest.approx(hit_rate, abs=1e-4)
    breach = card["breach"]["all"]
    assert breach["strikes"] == 4 * len(settled)
    assert breach["brier"] == pytest.approx(np.mean(model), abs=1e-5)
    assert breach["brier_lognormal"] == pytest.approx(np.mean(lognormal), abs=1e-5)
    # trap: the published 0.31 against RV of the next 5 closes above VIX at the close
    r = np.log(frame["spot"]).diff()
    rv5 = np.sqrt((r**2).rolling(5).sum().shift(-5) * 252 / 5)
    event = (rv5 > frame["vix"] / 100)[rv5.notna()].astype(int).iloc[:-1]  # the last: open
    trap = got["trap"]["all"]
    assert trap["scored"] == len(event) == len(days) - 6 and 0 < event.mean() < 1
    assert trap["event_rate"] == pytest.approx(event.mean(), abs=1e-4)
    assert trap["brier"] == pytest.approx(((0.31 - event) ** 2).mean(), abs=1e-5)
    assert trap["auc"] == 0.5  # one published value ranks nothing
    assert 'aegis_scorecard_trap{stat="auc",window="all"} 0.5' in exported
    # stress: rank correlation with the realised vol from each close to its expiry's close
    position = {d: i for i, d in enumerate(days)}
    log_close = np.log(frame["spot"].to_numpy())
    realised = [
        np.sqrt(np.sum(np.diff(log_close[position[s] : position[e] + 1]) ** 2) * 252 / n)
        for s, e in zip(settled["session"], settled["expiry"], strict=True)
        if (n := position[e] - position[s])
    ]
    rho = pd.Series(settled["stress"].to_numpy()).corr(pd.Series(realised), method="spearman")
    assert got["stress"]["all"]["scored"] == len(settled)
    assert got["stress"]["all"]["spearman"] == pytest.approx(rho, abs=1e-4)
    regimes = settled["vix"].map({9.0: "LOW", 15.0: "NORMAL", 21.0: "HIGH"})
    for regime, rows in settled.groupby(regimes):
        assert card["by_regime"][regime]["inside"] == int(rows["inside"].sum())


def test_the_chain_at_a_moment_and_its_oi_change_since_the_open(
    settings: Settings, tmp_path: Path
) -> None:
    settings = settings.model_copy(update={"history_url": f"sqlite:///{tmp_path / 'h.sqlite3'}"})
    store = HistoryStore(open_engine(settings.history_url))
    migrate(store.engine)
    open_s = AS_OF - (5 * 3600 + 45 * 60)  # 09:15 IST
    yesterday = chain_minute(open_s - 18 * 3600, 50.0)
    no_chain = make_block("seller", as_of=open_s + 60).model_copy(
        update={"session_date": "2025-06-30"}
    )
    minutes = [chain_minute(open_s + 60 * i, 100.0 + 10 * i) for i in range(2, 8)]
    store.write([yesterday, no_chain, *minutes])
    with RunningGateway(settings) as gw:
        got = httpx.get(gw.url + "/api/v1/chain/at", params={"t": open_s + 300 + 30}).json()
        assert got["at"] == "2025-06-30T03:50:00.000Z"  # 09:20 IST: the newest chain at or before t
        assert got["since"] == "2025-06-30T03:47:00.000Z"  # 09:17 IST: the session's first chain
        assert [r["ce_change"] for r in got["strikes"]] == [30.0, 30.0, 30.0]
        assert [r["pe_change"] for r in got["strikes"]] == [60.0, 60.0, 60.0]
        since = httpx.get(
            gw.url + "/api/v1/chain/at", params={"t": open_s + 420, "since": open_s + 240}
        ).json()
        assert [r["ce_change"] for r in since["strikes"]] == [30.0, 30.0, 30.0]
        # a chain of another expiry is not compared
        store.write([chain_minute(open_s + 480, 500.0, expiry="2025-07-10")])
        rolled = httpx.get(gw.url + "/api/v1/chain/at", params={"t": open_s + 480}).json()
        assert rolled["expiry"] == "2025-07-10"
        assert {r["ce_change"] for r in rolled["strikes"]} == {None}
        early = httpx.get(gw.url + "/api/v1/chain/at", params={"t": open_s - 86_400})
        assert early.status_code == 404


def history_service(settings: Settings, url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "AEGIS_REDIS_URL": settings.redis_url,
        "AEGIS_EMBEDDED_REDIS": "false",
        "AEGIS_HISTORY_URL": url,
        "AEGIS_READ_COUNT": "40",
        "AEGIS_BLOCK_MS": "100",
        "AEGIS_CLAIM_IDLE_MS": "500",
    }
    return start_service("history", env, log)


def wait_all_stored(store: HistoryStore, client: redis.Redis, count: int) -> None:
    wait_for(
        lambda: (
            store.span()[2] == count and client.xpending(streams.BLOCKS, "history")["pending"] == 0
        ),
        120,
        f"all {count} blocks stored and acknowledged",
    )


def stored(store: HistoryStore) -> tuple[list[Any], list[Any]]:
    with store.engine.connect() as conn:
        blocks = conn.execute(select(block).order_by(block.c.engine, block.c.as_of)).all()
        points = conn.execute(
            select(series_point).order_by(series_point.c.series, series_point.c.as_of)
        ).all()
    return [tuple(r) for r in blocks], [tuple(r) for r in points]


@pytest.mark.slow
def test_a_history_service_sigkilled_mid_stream_stores_what_a_clean_run_stores(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path, database_url: str
) -> None:
    blocks = [
        make_block(engine, as_of=AS_OF + 60 * i, spot=25_000.0 + i)
        for i in range(1_500)
        for engine in ("market", "seller")
    ]
    publish(settings, *blocks)
    store = HistoryStore(open_engine(database_url))
    migrate(store.engine)
    procs = [history_service(settings, database_url, tmp_path / "victim.log")]
    try:
        wait_for(lambda: store.span()[2] >= 400, 60, "the first batches to be stored")
        procs[0].kill()  # SIGKILL: whatever it read and had not acknowledged is pending
        procs[0].wait(timeout=10)
        assert store.span()[2] < len(blocks)  # killed mid-stream
        procs.append(history_service(settings, database_url, tmp_path / "survivor.log"))
        wait_all_stored(store, redis_client, len(blocks))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=20)
    clean = HistoryStore(open_engine(f"sqlite:///{tmp_path / 'clean.sqlite3'}"))
    migrate(clean.engine)
    clean.write(blocks)
    assert stored(store) == stored(clean)  # every row, once, with the same values
    # a replay's history yields the CPU to the engines (SCHED_IDLE) and catches up after
    assert '"idle_cpu_only": true' in (tmp_path / "victim.log").read_text()
    store.engine.dispose()


@pytest.mark.slow
def test_a_postgresql_restart_under_load_loses_nothing(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path, postgres: PostgresServer
) -> None:
    url = postgres.new_database()
    blocks = [make_block("market", as_of=AS_OF + 60 * i, spot=25_000.0 + i) for i in range(3_000)]
    store = HistoryStore(open_engine(url))
    migrate(store.engine)
    service = history_service(settings, url, tmp_path / "history.log")
    try:
        publish(settings, *blocks)
        wait_for(lambda: store.span()[2] >= 300, 60, "the first batches to be stored")
        postgres.restart()  # the service's connections are cut mid-stream
        assert store.span()[2] < len(blocks)
        wait_all_stored(store, redis_client, len(blocks))
    finally:
        service.terminate()
        service.wait(timeout=20)
    assert [p.value for p in store.series("spot", AS_OF, AS_OF + 60 * 3_000)] == [
        25_000.0 + i for i in range(3_000)
    ]
    log = (tmp_path / "history.log").read_text()
    assert "history database" in log  # the outage was seen and retried, not dead-lettered
    assert redis_client.xlen(streams.DEAD_LETTER) == 0
    store.engine.dispose()


def test_the_scorecard_scores_direction_against_the_blocks_own_climatology(
    settings: Settings, tmp_path: Path
) -> None:
    days = pd.bdate_range("2025-05-01", periods=40)
    spots = 25_000 * np.exp(np.cumsum(np.random.default_rng(3).normal(0, 0.008, len(days))))
    store = HistoryStore(open_engine(f"sqlite:///{tmp_path / 'h.sqlite3'}"))
    migrate(store.engine)
    for d, spot in zip(days, spots, strict=True):
        day = f"{d:%Y-%m-%d}"
        market, seller = closing_day(day, float(spot), 14.0, "2030-01-03")
        direction = make_block("direction", as_of=market.as_of, spot=float(spot))
        store.write([market, seller, direction.model_copy(update={"session_date": day})])
    card = score_history(
        *(store.closing_blocks(e, 0, 2**40) for e in ("market", "seller", "direction"))
    )
    scores = direction_scores(card.directions)
    # offline: the class of each h-session return against 0.25·σ20·√h, Brier per horizon
    r = np.diff(np.log(spots))
    horizons = make_block("direction", as_of=AS_OF).data["horizons"]
    for key, h in {"t1": 1, "t3": 3, "t5": 5, "t10": 10}.items():
        p = np.array([horizons[key]["probabilities"][c] for c in ("up", "neutral", "down")])
        c = np.array([horizons[key]["climatology"][k] for k in ("up", "neutral", "down")])
        model, clim = [], []
        for i in range(20, len(days) - 1 - h):  # the newest session is still open
            sigma = np.std(r[i - 20 : i], ddof=1)
            move = np.log(spots[i + h] / spots[i])
            band = 0.25 * sigma * np.sqrt(h)
            y = np.eye(3)[0 if move >= band else 2 if move <= -band else 1]
            model.append(np.sum((p - y) ** 2))
            clim.append(np.sum((c - y) ** 2))
        assert scores[key]["scored"] == len(days) - 21 - h
        assert scores[key]["brier"] == pytest.approx(np.mean(model), abs=1e-5)
        assert scores[key]["brier_climatology"] == pytest.approx(np.mean(clim), abs=1e-5)
    assert "t40" not in scores  # no 40 later closes stored
    # the closes come from the seller blocks: a replay conflates the market blocks
    sellers = store.closing_blocks("seller", 0, 2**40)
    directions = store.closing_blocks("direction", 0, 2**40)
    alone = score_history([], sellers, directions)
    assert direction_scores(alone.directions) == scores and alone.traps == card.traps


def test_in_sample_forecasts_are_left_out_of_the_scorecard_but_their_closes_count() -> None:
    days = ["2025-06-02", "2025-06-03", "2025-06-04", "2025-06-05", "2025-06-06"]
    expiries = ["2025-06-05"] * 4 + ["2025-06-12"]  # from the 06-05 close, the next weekly
    sellers = [
        closing_day(d, 25_000.0 + 100 * i, 14.0, e)[1]
        for i, (d, e) in enumerate(zip(days, expiries, strict=True))
    ]
    seen = sellers[0].data["safe_range"] | {"provenance": {"source": "model", "in_sample": True}}
    sellers[0] = sellers[0].model_copy(update={"data": {**sellers[0].data, "safe_range": seen}})
    found = score_history([], sellers, [])
    assert found.in_sample_left_out == 1
    assert [r.forecast.session for r in found.ranges] == ["2025-06-03", "2025-06-04"]
    assert found.ranges[0].expiry_close == 25_300.0  # the 06-05 close, from its seller block


def test_the_trap_auc_counts_every_event_non_event_pair_ties_half() -> None:
    rng = np.random.default_rng(7)
    scores = rng.choice([0.1, 0.2, 0.3, 0.5, 0.8], size=60)
    events = (rng.random(60) < scores).astype(int)
    pairs = list(zip(scores.tolist(), events.tolist(), strict=True))
    wins = [
        1.0 if p > q else 0.5 if p == q else 0.0 for p, y in pairs if y for q, z in pairs if not z
    ]
    assert trap_scores(pairs)["auc"] == pytest.approx(np.mean(wins), abs=1e-4)
    assert trap_scores([(0.9, 1), (0.8, 0), (0.3, 1), (0.1, 0)])["auc"] == 0.75
    assert trap_scores([(0.4, 1), (0.2, 1)])["auc"] is None  # no non-event to rank against
