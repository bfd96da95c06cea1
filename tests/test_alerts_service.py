"""The alerts service for real: subprocesses on a real redis-server, Apprise posting to a real
local HTTP receiver (``json://127.0.0.1:PORT/path``). Exactly the expected alerts arrive,
each once: across a SIGKILLed leader, and through a receiver that fails before it recovers;
a send that never succeeds is dead-lettered with its reason (no URL in it); a rules file with
a typo is refused at start naming the line and field; the gateway serves the alerts."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis

from services.alerts.main import AlertsWorker
from shared.bus import replies, streams
from shared.bus.publish import Bus, connect
from shared.bus.worker import read_health
from shared.config import PROJECT_ROOT, Settings
from shared.contract.schemas import DeadLetter, SignalBlock
from shared.redis_ops.acl import load_or_create_passwords
from shared.redis_ops.server import RedisServer
from tests.alerts_support import (
    RULES,
    alerts_env,
    oscillation,
    receiver,
    scenario,
    start_alerts,
    stop,
    wait_until,
)
from tests.bus_reads import messages
from tests.gateway_harness import RunningGateway
from tests.ports import free_port


def publish(settings: Settings, blocks: list[SignalBlock]) -> None:
    """All in one transaction: a reader gets them in one batch (as a fast replay does)."""
    client = connect(settings)
    bus = Bus(client, settings)
    pipe = client.pipeline(transaction=True)
    for block in blocks:
        bus.stage(pipe, block)
    pipe.execute()
    client.close()


def rules_file(tmp_path: Path, text: str = RULES) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(text)
    return path


def records(client: redis.Redis) -> list[dict]:
    return [orjson.loads(f[b"d"]) for _, f in replies.xrange(client, streams.ALERTS)]


def alerts_health(client: redis.Redis) -> list[dict]:
    return [h for h in read_health(client) if h["service"] == "alerts"]


@pytest.mark.slow
def test_end_to_end_exact_alerts_arrive_once(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    blocks, expected = scenario()
    with receiver() as rx:
        env = alerts_env(settings, rules_file(tmp_path), rx.url("/hook/s3cr3t-path"))
        proc = start_alerts(env, tmp_path / "alerts.log")
        try:
            wait_until(lambda: alerts_health(redis_client), 30, "the alerts service to report")
            publish(settings, blocks)
            wait_until(lambda: len(rx.accepted) >= len(expected), 30, "every alert")
            wait_until(
                lambda: (
                    redis_client.xpending(streams.BLOCKS, "alerts")["pending"] == 0
                    and len(records(redis_client)) == len(expected)
                ),
                30,
                "the batch committed",
            )
        finally:
            stop([proc])
        got = [(r.rule, r.message) for r in rx.accepted]
    assert [rule for rule, _ in got] == [e[0] for e in expected]
    stored = records(redis_client)
    assert [(r["rule"], r["from"], r["to"], r["as_of"]) for r in stored] == expected
    assert all(r["delivery"] == "sent" for r in stored)
    assert [r.alert_id for r in rx.accepted] == [r["id"] for r in stored]
    first = rx.accepted[0].message
    assert "NIFTY spot 26,200.00 pts rose above the high edge" in first
    assert "Rule: spot_safe_range (band)" in first
    assert f"Dashboard: http://dash.example:8765/#at={expected[0][3] * 1000}" in first
    assert "changed from FAVOURABLE to RISKY: trap risk high" in rx.accepted[2].message
    log = (tmp_path / "alerts.log").read_text()
    assert "s3cr3t-path" not in log and '"targets": ["json"]' in log  # the scheme only
    state = replies.hget_bytes(redis_client, "aegis:alerts:state", "last_id")
    assert state is not None and state == replies.xrevrange(redis_client, streams.BLOCKS)[0][0]


@pytest.mark.slow
def test_two_replicas_one_sigkilled_mid_send_each_alert_arrives_once(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    blocks, count = oscillation(9)  # 8 alerts
    rules = rules_file(tmp_path)
    with receiver(hold_at=("/victim", 3)) as rx:
        victim = start_alerts(
            alerts_env(settings, rules, rx.url("/victim"), AEGIS_READ_COUNT="256"),
            tmp_path / "victim.log",
        )
        procs = [victim]
        try:
            wait_until(
                lambda: any(h.get("role") == "leader" for h in alerts_health(redis_client)),
                30,
                "the first replica to lead",
            )
            survivor = start_alerts(
                alerts_env(settings, rules, rx.url("/survivor")), tmp_path / "s.log"
            )
            procs.append(survivor)
            wait_until(lambda: len(alerts_health(redis_client)) == 2, 30, "the standby")
            publish(settings, blocks)
            # the victim sent two alerts and is inside the third send: kill it there (the
            # receiver never accepts that request: it was not delivered)
            assert rx.held.wait(30), "the victim never reached its third send"
            victim.kill()
            victim.wait(timeout=10)
            rx.release.set()
            wait_until(lambda: len(rx.accepted) >= count, 60, f"{count} alerts")
            wait_until(
                lambda: (
                    redis_client.xpending(streams.BLOCKS, "alerts")["pending"] == 0
                    and len(records(redis_client)) == count
                ),
                30,
                "the survivor's commit",
            )
            health = wait_until(
                lambda: [
                    h
                    for h in alerts_health(redis_client)
                    if h["consumer"].endswith(f"-{survivor.pid}") and h["claims_taken_over"]
                ],
                30,
                "the survivor's health report",
            )
        finally:
            stop(procs)
    ids = Counter(r.alert_id for r in rx.accepted)
    assert len(ids) == count and set(ids.values()) == {1}  # every alert once
    assert [r.path for r in rx.accepted] == ["/victim"] * 2 + ["/survivor"] * (count - 2)
    assert health[0]["claims_taken_over"] == 1  # the third: claimed by the victim, unsent
    assert health[0]["already_sent"] == 2  # the first two: re-evaluated, not re-sent
    stored = records(redis_client)
    assert [r["id"] for r in stored] == [r.alert_id for r in rx.accepted]  # recorded once


@pytest.mark.slow
def test_a_receiver_failing_three_times_gets_the_alert_once(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    blocks, count = oscillation(2)  # one alert
    with receiver(fail_first=3) as rx:
        env = alerts_env(settings, rules_file(tmp_path), rx.url("/hook"))
        proc = start_alerts(env, tmp_path / "alerts.log")
        try:
            publish(settings, blocks)
            wait_until(lambda: len(records(redis_client)) == count, 30, "the alert recorded")
        finally:
            stop([proc])
        assert rx.refused == 3 and len(rx.accepted) == 1
    assert records(redis_client)[0]["delivery"] == "sent"
    assert redis_client.xlen(streams.DEAD_LETTER) == 0


@pytest.mark.slow
def test_a_send_that_keeps_failing_is_dead_lettered_with_its_reason(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    blocks, _ = oscillation(2)
    with receiver(fail_first=1000) as rx:
        env = alerts_env(
            settings,
            rules_file(tmp_path),
            rx.url("/hook/t0ken-xyz"),
            AEGIS_ALERTS_SEND_ATTEMPTS="3",
        )
        proc = start_alerts(env, tmp_path / "alerts.log")
        try:
            publish(settings, blocks)
            wait_until(lambda: len(records(redis_client)) == 1, 30, "the alert recorded")
        finally:
            stop([proc])
        assert rx.refused == 3
    letter = messages(redis_client, streams.DEAD_LETTER, DeadLetter)[0]
    assert letter.service == "alerts"
    assert "not delivered to json:// after 3 tries" in letter.reason
    assert "error=500" in letter.reason and "t0ken-xyz" not in letter.reason
    assert records(redis_client)[0]["delivery"] == "dead"


def test_a_rules_file_with_a_typo_is_refused_at_start(tmp_path: Path) -> None:
    bad = RULES.replace("hysteresis = 15.0", "hysterisis = 15.0")
    line = next(i for i, s in enumerate(bad.splitlines(), 1) if s.startswith("hysterisis"))
    path = rules_file(tmp_path, bad)
    done = subprocess.run(
        [sys.executable, "-m", "services.alerts"],
        cwd=PROJECT_ROOT,
        env={**alerts_env_minimal(), "AEGIS_ALERTS_RULES": str(path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert f"{path} line {line}: rule 1 ('spot_safe_range') field 'hysterisis'" in done.stderr
    assert "Extra inputs are not permitted" in done.stderr


def alerts_env_minimal() -> dict[str, str]:
    import os

    return {**os.environ, "AEGIS_EMBEDDED_REDIS": "false", "AEGIS_LOG_JSON": "true"}


def test_test_rules_prints_what_would_have_fired(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    blocks, expected = scenario()
    publish(settings, blocks)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.alerts",
            "test-rules",
            "--from",
            "2025-06-30",
            "--to",
            "2025-06-30",
            "--rules",
            str(rules_file(tmp_path)),
        ],
        cwd=PROJECT_ROOT,
        env={**alerts_env_minimal(), "AEGIS_REDIS_URL": settings.redis_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[-1].startswith(f"{len(expected)} alerts from {len(blocks)} blocks")
    assert "inside -> above: NIFTY spot 26,200.00 pts rose above" in lines[0]
    assert lines[0].startswith("2025-06-30 11:01 IST  CRITICAL")
    assert redis_client.xlen(streams.ALERTS) == 0  # nothing written


def test_gateway_serves_recent_alerts_newest_first_with_the_document_token(
    settings: Settings, redis_client: redis.Redis
) -> None:
    for i in range(5):
        redis_client.xadd(streams.ALERTS, {"d": orjson.dumps({"id": f"a{i}", "text": str(i)})})
    secured = settings.model_copy(update={"api_token": "s3cret"})
    with RunningGateway(secured) as gateway:
        assert httpx.get(gateway.url + "/api/v1/alerts").status_code == 401
        assert httpx.get(gateway.url + "/api/v1/document").status_code == 401
        auth = {"Authorization": "Bearer s3cret"}
        body = httpx.get(gateway.url + "/api/v1/alerts?limit=3", headers=auth).json()
        assert [a["id"] for a in body["alerts"]] == ["a4", "a3", "a2"] and body["count"] == 3
        assert httpx.get(gateway.url + "/api/v1/alerts?limit=0", headers=auth).status_code == 422


@pytest.mark.slow
def test_the_alerts_user_does_its_job_under_acl_and_the_gateway_reads_alerts(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    passwords = load_or_create_passwords(tmp_path / "credentials.json")
    server = RedisServer(free_port(), "unused", tmp_path / "redis", passwords=passwords)
    with server, receiver(fail_first=1) as rx:
        if int(server.client().info("server")["redis_version"].split(".")[0]) < 7:
            pytest.skip("the ACL tests need Redis 7")

        def as_user(user: str, **extra: Any) -> Settings:
            return Settings(
                redis_url=server.address,
                redis_user=user,
                redis_password=passwords[user],
                embedded_redis=False,
                var_dir=tmp_path / "var",
                block_ms=100,
                claim_idle_ms=1000,
                clock="event",
                **extra,
            )

        blocks, expected = scenario()
        publish(as_user("admin"), blocks)
        worker = AlertsWorker(
            as_user(
                "alerts",
                alerts_rules=rules_file(tmp_path),
                alerts_urls=rx.url("/acl"),
                alerts_backoff_initial_s=0.05,
            ),
            "alerts-acl",
        )
        worker.run(max_idle_reads=3)
        assert worker.stats["errors"] == 0 and worker.stats["dead_lettered"] == 0
        assert len(rx.accepted) == len(expected) and rx.refused == 1
        with RunningGateway(as_user("gateway")) as gateway:
            body = httpx.get(gateway.url + "/api/v1/alerts?limit=2").json()
        assert [a["rule"] for a in body["alerts"]] == [expected[-1][0], expected[-2][0]]
    logged = capfd.readouterr()
    assert "no permissions" not in logged.out + logged.err
