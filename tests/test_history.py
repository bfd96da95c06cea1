"""The history store, on both databases it runs on: SQLite (the embedded default) and a real
PostgreSQL server; the history worker on a real Redis (a redelivered batch doubles
nothing); the series and time-travel API through the real gateway."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from services.history.main import HistoryWorker
from shared import streams
from shared.config import Settings
from shared.history.store import HistoryStore, migrate, open_engine
from shared.schemas import SignalBlock
from tests.block_factory import AS_OF, make_block
from tests.gateway_harness import RunningGateway, publish
from tests.postgres_server import PostgresServer, binaries


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
