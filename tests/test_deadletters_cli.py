"""python -m services.deadletters on a real Redis: list, show, requeue, drop."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import redis

from services.deadletters import cli
from shared.bus import replies, streams
from shared.bus.publish import Bus
from shared.config import PROJECT_ROOT, Settings
from shared.contract.codec import decode, encode
from tests.test_ingest_service import bar


@pytest.fixture()
def letters(settings: Settings, redis_client: redis.Redis) -> list[str]:
    bus = Bus(redis_client, settings)
    for minute, reason in ((1, "first"), (2, "second")):
        bus.dead_letter(
            origin_stream=streams.BARS,
            origin_id=f"{minute}-0",
            service="features",
            reason=reason,
            payload=encode(bar(minute))["d"],
        )
    bus.dead_letter(
        origin_stream=streams.BARS,
        origin_id="3-0",
        service="features",
        reason="oversized",
        payload=b"x" * (settings.dead_letter_excerpt_bytes * 2),
    )
    return [i.decode() for i, _ in replies.xrange(redis_client, streams.DEAD_LETTER)]


def run(settings: Settings, monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    monkeypatch.setattr(cli, "command_settings", lambda user: settings)
    return cli.main(list(argv))


def test_list_and_show(
    settings: Settings,
    letters: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(settings, monkeypatch, "list") == 0
    out = capsys.readouterr().out
    assert "3 dead letters" in out
    assert out.index("oversized") < out.index("second") < out.index("first")  # newest first
    assert run(settings, monkeypatch, "show", letters[0]) == 0
    shown = capsys.readouterr().out
    assert "reason:    first" in shown and "'symbol': 'NIFTY'" in shown
    assert run(settings, monkeypatch, "show", "9-9") == 1


def test_requeue_publishes_the_bar_and_deletes_the_letter(
    settings: Settings,
    redis_client: redis.Redis,
    letters: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(settings, monkeypatch, "requeue", letters[0]) == 0
    assert "published" in capsys.readouterr().out
    [(_, fields)] = replies.xrange(redis_client, streams.BARS)
    assert decode(fields) == bar(1) and fields[b"s"] == b"1"
    assert redis_client.xlen(streams.DEAD_LETTER) == 2
    # an excerpt cannot be requeued: refused, the letter stays
    assert run(settings, monkeypatch, "requeue", letters[2]) == 1
    assert "keeps 4096 of 8192" in capsys.readouterr().out
    assert redis_client.xlen(streams.DEAD_LETTER) == 2


def test_drop(
    settings: Settings,
    redis_client: redis.Redis,
    letters: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert run(settings, monkeypatch, "drop", letters[1], letters[2]) == 0
    assert [i.decode() for i, _ in replies.xrange(redis_client, streams.DEAD_LETTER)] == letters[:1]
    assert run(settings, monkeypatch, "drop", letters[1]) == 1


def test_the_module_runs_as_a_command(settings: Settings, letters: list[str]) -> None:
    env = {**os.environ, "AEGIS_REDIS_URL": settings.redis_url}
    done = subprocess.run(
        [sys.executable, "-m", "services.deadletters", "list", "--service", "features"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "3 dead letters" in done.stdout and letters[0] in done.stdout
