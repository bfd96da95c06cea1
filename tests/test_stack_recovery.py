"""The stack (``make run``) after Redis lost its data once the replay had finished: ingest,
which stays up keeping what it published, notices (the run epoch) and replays again; the
streams and the document are rebuilt. On the real processes and the embedded, ACL'd Redis."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis

from shared.bus import streams
from shared.bus.worker import read_health
from shared.redis_ops.acl import credentials_file
from tests.test_dashboard_browser import STACK_START_S, Stack
from tests.waiting import wait_for

pytestmark = pytest.mark.slow


def test_the_stack_replays_again_after_redis_lost_the_finished_replay(tmp_path: Path) -> None:
    # the default period's first replayed session only, unpaced: the replay finishes quickly
    stack = Stack(tmp_path, AEGIS_REPLAY_END="2026-01-22", AEGIS_REPLAY_SPEED="0")
    try:
        log = stack.log_path

        def logged(event: str) -> bool:
            assert stack.proc.poll() is None, log.read_text()[-3000:]
            return f'"event": "{event}"' in log.read_text()

        def admin() -> redis.Redis | None:
            path = credentials_file(tmp_path)
            if not path.exists():
                return None
            password = json.loads(path.read_text())["admin"]
            return redis.Redis(port=stack.redis_port, username="admin", password=password)

        client = wait_for(admin, STACK_START_S, "the stack's Redis credentials")

        def replay_ended() -> bool:
            assert stack.proc.poll() is None, log.read_text()[-3000:]
            reports = read_health(client)
            bars_ingest = [
                r for r in reports if (r["service"], r["consumer"]) == ("ingest", "file")
            ]
            return any(r.get("finished") for r in bars_ingest)

        wait_for(replay_ended, STACK_START_S, "the replay to end")
        bars = client.xlen(streams.BARS)
        epoch = (stack.document() or {}).get("epoch")
        assert bars > 300 and epoch is not None

        client.flushall()
        wait_for(lambda: logged("replaying_after_data_loss"), 30, "ingest to see the loss")
        wait_for(lambda: client.xlen(streams.BARS) == bars, 300, "every bar published again")

        def rebuilt() -> dict | None:
            doc = stack.document() or {}
            sections = ("market", "direction", "seller", "buyer")
            done = doc.get("epoch") != epoch and all(doc.get(s) for s in sections)
            return doc if done else None

        wait_for(rebuilt, 120, "a new document filled by the replay again")
    finally:
        stack.stop()
