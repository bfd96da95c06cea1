"""Test fixtures: a real redis-server process (never a fake), flushed around each test, and
a real headless Chromium (Debian's) for the browser tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
from playwright.async_api import Browser, async_playwright

from shared.config import PROJECT_ROOT, Settings
from shared.redis_ops.server import RedisServer
from tests.ports import free_port

DATA_DIR = PROJECT_ROOT / "data"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(free_port(), "test-secret", tmp_path_factory.mktemp("redis"))
    with server:
        yield server


@pytest.fixture()
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis_server.client()
    client.flushall()
    yield client
    client.flushall()
    client.close()


@pytest.fixture()
def settings(redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path) -> Settings:
    """Settings pointing at the test Redis, with short timings so tests finish quickly."""
    return Settings(
        redis_url=redis_server.url,
        redis_port=redis_server.port,
        redis_password=redis_server.password,
        embedded_redis=False,
        var_dir=tmp_path / "var",
        model_dir=tmp_path / "models",
        output_path=tmp_path / "var" / "aegismatrix.json",
        block_ms=100,
        claim_idle_ms=1000,
        clock="event",
        log_json=True,
        participant_oi_file=None,  # positioning off unless a test turns it on (positioning)
        futures_file=None,
        chain_file=None,  # likewise the bundled option chain
    )


@pytest.fixture()
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield launched
        await launched.close()
