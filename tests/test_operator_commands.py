"""The README's operator commands beside ``make run``: the embedded Redis has one ACL user per
service and the default user off, and a command started by hand (another worker replica,
dead letters, a recording, the trainer) finds the generated password itself, in
var/redis/credentials.json, instead of failing on authentication."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from shared.bus import streams
from shared.bus.lifecycle import EXIT_CREDENTIALS
from shared.config import PROJECT_ROOT
from shared.redis_ops.acl import credentials_file, load_or_create_passwords
from shared.redis_ops.server import RedisServer
from tests.ports import free_port
from tests.processes import kill_tree, start_service
from tests.waiting import wait_for


@pytest.fixture()
def make_run_redis(tmp_path: Path) -> Iterator[tuple[RedisServer, dict[str, str]]]:
    """The embedded Redis as ``make run`` starts it, and the environment of a terminal beside
    it: no Redis user, password or URL, only the project's own var/ folder and port."""
    var = tmp_path / "var"
    passwords = load_or_create_passwords(credentials_file(var))
    server = RedisServer(free_port(), "unused", var / "redis", passwords=passwords)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AEGIS_REDIS")}
    env.pop("AEGIS_EMBEDDED_REDIS", None)
    env |= {
        "AEGIS_VAR_DIR": str(var),
        "AEGIS_REDIS_PORT": str(server.port),
        "AEGIS_MODEL_DIR": str(tmp_path / "models"),
        "AEGIS_LOG_JSON": "true",
    }
    with server:
        yield server, env


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_operator_commands_read_the_generated_credentials(
    make_run_redis: tuple[RedisServer, dict[str, str]], tmp_path: Path
) -> None:
    server, env = make_run_redis
    admin = server.client()
    admin.xadd(streams.BARS, {"t": "bar", "v": "1", "d": b"\x80"})
    deadletters = run(env, "services.deadletters", "list")
    assert deadletters.returncode == 0, deadletters.stderr
    recording = tmp_path / "rec.bin"
    record = run(env, "services.ingest.record", "--streams", streams.BARS, "--out", str(recording))
    assert record.returncode == 0, record.stderr
    assert recording.stat().st_size > 0
    enqueue = run(env, "services.trainer", "enqueue", "--fast", "--no-wait")
    assert enqueue.returncode == 0, enqueue.stderr
    assert "enqueued job" in enqueue.stdout


@pytest.mark.slow
def test_another_worker_replica_started_by_hand_joins_as_its_own_user(
    make_run_redis: tuple[RedisServer, dict[str, str]], tmp_path: Path
) -> None:
    server, env = make_run_redis
    admin = server.client()
    replica = start_service("direction", env, tmp_path / "direction.log")
    try:

        def reported() -> dict | None:
            keys = admin.keys(streams.health("direction", "*"))
            raw = admin.get(keys[0]) if keys else None
            return orjson.loads(raw) if raw else None

        report = wait_for(reported, 60, "the replica's health report")
        assert report["service"] == "direction"
        users = {c["user"] for c in admin.client_list()}
        assert "direction" in users and "default" not in users
    finally:
        kill_tree(replica)
    assert "AuthenticationError" not in (tmp_path / "direction.log").read_text()


def test_given_credentials_are_kept_and_wrong_ones_say_where_to_look(
    make_run_redis: tuple[RedisServer, dict[str, str]],
) -> None:
    _, env = make_run_redis
    wrong = run(
        {**env, "AEGIS_REDIS_USER": "admin", "AEGIS_REDIS_PASSWORD": "wrong"},
        "services.deadletters",
        "list",
    )
    assert wrong.returncode == EXIT_CREDENTIALS
    assert "credentials" in wrong.stderr and "Traceback" not in wrong.stderr
