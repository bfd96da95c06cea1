"""The stack (``make run``) after Redis lost its data once the replay had finished: it
notices (the run epoch), starts the replay again, and the streams and the document are
rebuilt, on the real processes and the embedded, ACL'd Redis."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis

from shared import streams
from shared.redis_acl import credentials_file
from tests.test_dashboard_browser import STACK_START_S, Stack
from tests.waiting import wait_for

pytestmark = pytest.mark.slow


def test_the_stack_replays_again_after_redis_lost_the_finished_replay(tmp_path: Path) -> None:
    # the default period's first replayed session only, unpaced: the replay finishes quickly
    stack = Stack(tmp_path, AEGIS_REPLAY_END="2026-01-22", AEGIS_REPLAY_SPEED="0")
    try:
        log = stack.log_path

        def logged(event: str, count: int = 1) -> bool:
            assert stack.proc.poll() is None, log.read_text()[-3000:]
            return log.read_text().count(f'"event": "{event}"') >= count

        wait_for(lambda: logged("replay_finished"), STACK_START_S, "the replay to finish")
        password = json.loads(credentials_file(tmp_path).read_text())["admin"]
        admin = redis.Redis(port=stack.redis_port, username="admin", password=password)
        bars = admin.xlen(streams.BARS)
        epoch = (stack.document() or {}).get("epoch")
        assert bars > 300 and epoch is not None

        admin.flushall()
        wait_for(lambda: logged("replaying_after_data_loss"), 30, "the stack to see the loss")
        wait_for(lambda: logged("replay_finished", 2), 300, "the replay to finish again")
        assert admin.xlen(streams.BARS) == bars  # every bar published again

        def rebuilt() -> dict | None:
            doc = stack.document() or {}
            sections = ("market", "direction", "seller", "buyer")
            done = doc.get("epoch") != epoch and all(doc.get(s) for s in sections)
            return doc if done else None

        wait_for(rebuilt, 120, "a new document filled by the replay again")
    finally:
        stack.stop()
