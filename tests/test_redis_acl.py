"""Least privilege on a real Redis 7 with the ACL file the stack uses: every service, as its
own user, does its job in a real pipeline (ingest → features → engines → gateway, training
on rq) and is refused the admin commands and every key outside its patterns."""

from __future__ import annotations

import itertools
import os
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis

from services.buyer.main import BuyerWorker
from services.direction.main import DirectionWorker
from services.seller.main import SellerWorker
from shared.bus import streams
from shared.bus.lifecycle import EXIT_CREDENTIALS
from shared.bus.worker import read_health
from shared.config import PROJECT_ROOT, Settings
from shared.redis_ops.acl import SERVICE_USERS, SERVICES, load_or_create_passwords
from shared.redis_ops.memory import check_memory
from shared.redis_ops.server import RedisServer
from tests.bus_reads import hash_items
from tests.gateway_harness import RunningGateway
from tests.pipeline import ingest, run_features
from tests.ports import free_port
from tests.waiting import wait_for

SECTIONS = ("market", "direction", "seller", "buyer")


@pytest.fixture(scope="module")
def acl_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    folder = tmp_path_factory.mktemp("acl")
    passwords = load_or_create_passwords(folder / "credentials.json")
    server = RedisServer(
        free_port(), "unused", folder / "redis", passwords=passwords, maxmemory_mb=512
    )
    with server:
        version = server.client().info("server")["redis_version"]
        if int(version.split(".")[0]) < 7:
            pytest.skip(f"Redis {version}: the ACL tests need Redis 7 (install redis-server)")
        yield server


@pytest.fixture()
def as_user(acl_server: RedisServer, tmp_path: Path) -> Iterator[Callable[[str], Settings]]:
    """Settings of one service connecting as its own ACL user; the data is flushed after."""
    assert acl_server.passwords is not None
    passwords = acl_server.passwords

    def settings_for(user: str) -> Settings:
        return Settings(
            redis_url=acl_server.address,
            redis_user=user,
            redis_password=passwords[user],
            embedded_redis=False,
            var_dir=tmp_path / "var",
            model_dir=tmp_path / "models",
            output_path=tmp_path / "var" / "aegismatrix.json",
            block_ms=100,
            claim_idle_ms=1000,
            clock="event",
            health_ttl_s=600,  # every report outlives the test
        )

    yield settings_for
    acl_server.client().flushall()


def client_of(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(settings.redis_url)


@pytest.mark.slow
def test_pipeline_runs_with_one_user_per_service(
    as_user: Callable[[str], Settings], capfd: pytest.CaptureFixture[str]
) -> None:
    counts = ingest(as_user("ingest"))
    assert counts["published"] > 1500 and counts["dead_lettered"] == 0
    features = run_features(as_user("features"))
    assert features.stats["errors"] == 0 and features.stats["dead_lettered"] == 0
    for worker_class in (DirectionWorker, SellerWorker, BuyerWorker):
        worker = worker_class(as_user(worker_class.service), f"{worker_class.service}-acl")
        worker.run(max_idle_reads=2)
        assert worker.stats["processed"] > 1400, worker_class.service
        assert worker.stats["errors"] == 0 and worker.stats["dead_lettered"] == 0

    admin = client_of(as_user("admin"))
    assert admin.xlen(streams.DEAD_LETTER) == 0
    assert set(hash_items(admin, streams.LATEST_BLOCKS)) == set(SECTIONS)
    reporting = {"ingest", "features", "direction", "seller", "buyer"}
    for service in SERVICES:  # the container healthcheck reads reports as the service's user
        assert {r["service"] for r in read_health(client_of(as_user(service)))} >= reporting
    gateway_settings = as_user("gateway")
    with RunningGateway(gateway_settings) as gateway:

        def document() -> dict | None:
            doc = httpx.get(gateway.url + "/api/v1/document").json()
            return doc if all(doc.get(s) for s in SECTIONS) else None

        doc = wait_for(document, 10, "the gateway to read every section as its own user")
        assert doc["market"]["as_of"] == doc["direction"]["as_of"]
        assert httpx.get(gateway.url + "/readyz").json()["redis"] is True
    assert admin.exists(streams.RUN)  # ingest's run record, read by the gateway's clock
    logged = capfd.readouterr()
    assert "no permissions" not in logged.out + logged.err  # nothing refused on the way


REFUSED: dict[str, Callable[[redis.Redis], object]] = {
    "CONFIG SET dir": lambda c: c.config_set("dir", "/tmp"),
    "CONFIG GET": lambda c: c.config_get("*"),
    "SAVE": lambda c: c.save(),
    "BGSAVE": lambda c: c.bgsave(),
    "DEBUG": lambda c: c.execute_command("DEBUG", "OBJECT", streams.BARS),
    "FLUSHALL": lambda c: c.flushall(),
    "FLUSHDB": lambda c: c.flushdb(),
    "SHUTDOWN": lambda c: c.execute_command("SHUTDOWN", "NOSAVE"),
    "KEYS": lambda c: c.keys("*"),
    "ACL SETUSER": lambda c: c.acl_setuser("evil", enabled=True, nopass=True),
    "MODULE LOAD": lambda c: c.execute_command("MODULE", "LOAD", "/tmp/x.so"),
    "foreign key": lambda c: c.set("not-aegis", "1"),
    "aegis key of nobody": lambda c: c.set(f"{streams.PREFIX}:elsewhere", "1"),
}
# Keys that exist for some service but not this one (one sample each).
FOREIGN = {
    "ingest": streams.BLOCKS,
    "features": streams.MODEL_EVENTS,
    "direction": streams.BARS,
    "seller": streams.checkpoint("features"),
    "buyer": "rq:queue:aegis-training",
    "gateway": streams.BARS,
    "trainer": streams.BLOCKS,
    "alerts": streams.FEATURES,
    "history": streams.FEATURES,
}


@pytest.mark.parametrize("service", SERVICES)
def test_service_users_are_refused_admin_commands_and_foreign_keys(
    service: str, as_user: Callable[[str], Settings], acl_server: RedisServer
) -> None:
    client = client_of(as_user(service))
    assert client.ping() and client.acl_whoami() == service
    for what, call in {**REFUSED, "other service's key": lambda c: c.get(FOREIGN[service])}.items():
        with pytest.raises(redis.ResponseError) as refused:
            call(client)
        message = str(refused.value)
        assert "no permissions" in message or "not allowed" in message, (service, what, message)
    assert acl_server.client().ping()  # still up: SHUTDOWN was refused


STREAMS = (
    streams.BARS,
    streams.CHAINS,
    streams.FEATURES,
    streams.BLOCKS,
    streams.ALERTS,
    streams.MODEL_EVENTS,
    streams.DEAD_LETTER,
)
# The streams each service appends to; of those, the group-read one it alone trims.
WRITES = {
    "ingest": {streams.BARS, streams.CHAINS, streams.DEAD_LETTER},
    "features": {streams.FEATURES, streams.BLOCKS, streams.DEAD_LETTER},
    "direction": {streams.BLOCKS, streams.DEAD_LETTER},
    "seller": {streams.BLOCKS, streams.DEAD_LETTER},
    "buyer": {streams.BLOCKS, streams.DEAD_LETTER},
    "alerts": {streams.ALERTS, streams.DEAD_LETTER},
    "history": {streams.DEAD_LETTER},
    "gateway": {streams.DEAD_LETTER},
    "trainer": {streams.MODEL_EVENTS},
}
TRIMS = {"ingest": streams.BARS, "features": streams.FEATURES}
DESTROY: dict[str, Callable[[redis.Redis, str], object]] = {
    "XTRIM MAXLEN 0": lambda c, key: c.xtrim(key, maxlen=0),
    "SET over it": lambda c, key: c.set(key, "x"),
    "EXPIRE": lambda c, key: c.expire(key, 1),
    "DEL": lambda c, key: c.delete(key),
}


@pytest.mark.parametrize("service", SERVICES)
def test_no_service_can_destroy_or_write_another_services_stream(
    service: str, as_user: Callable[[str], Settings]
) -> None:
    """Least privilege to the command and key: a service appends to its own streams only and
    trims only the group-read stream it writes; it cannot empty, overwrite, expire or delete
    any stream (a reader able to trim could drop what other groups have not read)."""
    admin = client_of(as_user("admin"))
    for stream in STREAMS:
        admin.xadd(stream, {"d": b"x"})
    client = client_of(as_user(service))
    for stream in STREAMS:
        attempts = dict(DESTROY)
        if stream not in WRITES[service]:
            attempts["XADD"] = lambda c, key: c.xadd(key, {"d": b"forged"})
        if TRIMS.get(service) == stream:
            del attempts["XTRIM MAXLEN 0"]
        for what, call in attempts.items():
            with pytest.raises(redis.ResponseError) as refused:
                call(client, stream)
            assert "no permissions" in str(refused.value), (service, what, stream)
    assert {stream: admin.xlen(stream) for stream in STREAMS} == dict.fromkeys(STREAMS, 1)
    if service != "ingest":  # the run epoch: one write would make every process start over
        with pytest.raises(redis.ResponseError, match="no permissions"):
            client.set(streams.EPOCH, "forged")
    if service in TRIMS:
        assert client.xtrim(TRIMS[service], maxlen=0) == 1  # its own stream


@pytest.mark.slow
def test_default_user_is_off_and_the_acl_file_holds_no_password(acl_server: RedisServer) -> None:
    anonymous = redis.Redis(port=acl_server.port)
    with pytest.raises(redis.AuthenticationError):
        anonymous.ping()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=acl_server.port, password=acl_server.password).ping()  # as "default"
    assert acl_server.passwords is not None
    acl_text = (acl_server.data_dir / "users.acl").read_text()
    for user, password in acl_server.passwords.items():
        assert password not in acl_text
        assert f"user {user} reset on #" in acl_text
    assert "user default off" in acl_text
    for path in (
        acl_server.data_dir / "users.acl",
        acl_server.data_dir.parent / "credentials.json",
    ):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert set(SERVICE_USERS) <= set(acl_server.passwords)


def test_passwords_are_generated_once_and_url_escaped(tmp_path: Path) -> None:
    first = load_or_create_passwords(tmp_path / "credentials.json")
    assert load_or_create_passwords(tmp_path / "credentials.json") == first
    assert len(set(first.values())) == len(first)
    odd = Settings(redis_url="redis://127.0.0.1:1/0", redis_user="in gest", redis_password="p@:/%")
    kwargs = redis.Redis.from_url(odd.redis_url).connection_pool.connection_kwargs
    assert (kwargs["username"], kwargs["password"]) == ("in gest", "p@:/%")
    assert odd.redis_address == "redis://127.0.0.1:1/0"
    assert "p@:/%" not in repr(odd) and "redis_password" not in odd.model_dump()


def test_maxmemory_noeviction_and_the_memory_alarm(
    acl_server: RedisServer, as_user: Callable[[str], Settings]
) -> None:
    admin_settings = as_user("admin")
    admin = client_of(admin_settings)
    report = check_memory(admin, admin_settings)
    assert report["status"] == "ok" and report["maxmemory"] == 512 * 2**20
    assert report["maxmemory_policy"] == "noeviction"

    used = int(admin.info("memory")["used_memory"])
    admin.config_set("maxmemory", str(used + 2 * 2**20))
    try:
        writer = client_of(as_user("ingest"))
        entries = itertools.count()

        def fill(count: int) -> None:
            for _ in range(count):
                writer.xadd(streams.BARS, {"d": b"x" * 4096, "i": next(entries)})

        while int(admin.info("memory")["used_memory"]) < 0.9 * (used + 2 * 2**20):
            fill(20)
        report = check_memory(admin, admin_settings)  # past the alarm, still room to say so
        assert report["status"] == "degraded"
        assert "of maxmemory" in report["degraded_reasons"][0]
        stored = read_health(client_of(as_user("gateway")))
        assert any(r["service"] == "redis" and r["status"] == "degraded" for r in stored)
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            fill(10_000)
        full = check_memory(admin, admin_settings)  # its report refused too: said, not raised
        assert (
            full["status"] == "degraded" and "every write is refused" in full["degraded_reasons"][0]
        )
    finally:
        admin.config_set("maxmemory", str(512 * 2**20))


def test_acl_file_from_environment_passwords_loads_into_redis(
    acl_server: RedisServer, tmp_path: Path
) -> None:
    """What compose runs before Redis starts: passwords from AEGIS_REDIS_PASSWORD_<USER>."""
    assert acl_server.passwords is not None
    command = [sys.executable, "-m", "shared.redis_ops.acl", str(tmp_path / "users.acl")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AEGIS_REDIS_PASSWORD")}
    refused = subprocess.run(command, env=env, capture_output=True, text=True, cwd=PROJECT_ROOT)
    assert refused.returncode == 2 and "AEGIS_REDIS_PASSWORD_INGEST" in refused.stderr

    rotated = {**acl_server.passwords, "ingest": "rotated-ingest-password"}
    env.update({f"AEGIS_REDIS_PASSWORD_{user.upper()}": pw for user, pw in rotated.items()})
    written = subprocess.run(command, env=env, capture_output=True, text=True, cwd=PROJECT_ROOT)
    assert written.returncode == 0, written.stderr
    assert "rotated-ingest-password" not in (tmp_path / "users.acl").read_text()

    live = acl_server.data_dir / "users.acl"
    original = live.read_bytes()
    admin = acl_server.client()
    try:
        live.write_bytes((tmp_path / "users.acl").read_bytes())
        admin.acl_load()
        assert redis.Redis.from_url(acl_server.url_for("ingest", rotated["ingest"])).ping()
        with pytest.raises(redis.AuthenticationError):
            redis.Redis.from_url(
                acl_server.url_for("ingest", acl_server.passwords["ingest"])
            ).ping()
    finally:
        live.write_bytes(original)
        admin.acl_load()


def test_transactions_survive_a_restart(tmp_path: Path) -> None:
    """The workers' batches are MULTI/EXEC; replaying them from the AOF must not be refused
    (Redis re-checks a replayed EXEC against the default user, redis/redis#14541)."""
    passwords = load_or_create_passwords(tmp_path / "credentials.json")
    server = RedisServer(free_port(), "unused", tmp_path / "redis", passwords=passwords)
    with server:
        features = redis.Redis.from_url(server.url_for("features", passwords["features"]))
        pipe = features.pipeline(transaction=True)
        pipe.xadd(streams.FEATURES, {"d": b"snapshot"})
        pipe.set(streams.checkpoint("features"), b"state")
        pipe.execute()
    with server:
        admin = server.client()
        assert admin.xlen(streams.FEATURES) == 1
        assert admin.get(streams.checkpoint("features")) == b"state"
        assert b"CRITICAL" not in (server.data_dir / "redis.log").read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("service", ["ingest", "features", "seller", "gateway", "alerts"])
def test_wrong_credentials_end_a_service_in_one_line_with_exit_78(
    service: str, acl_server: RedisServer, tmp_path: Path
) -> None:
    """One behaviour for every service: no retrying forever as "unreachable", no traceback;
    a line naming the user and where credentials come from, and EX_CONFIG for the supervisor."""
    env = {
        **os.environ,
        "AEGIS_REDIS_URL": acl_server.address,
        "AEGIS_REDIS_USER": service,
        "AEGIS_REDIS_PASSWORD": "not-the-password",
        "AEGIS_EMBEDDED_REDIS": "false",
        "AEGIS_VAR_DIR": str(tmp_path / "var"),
        "AEGIS_MODEL_DIR": str(tmp_path / "models"),
        "AEGIS_GATEWAY_PORT": str(free_port()),
    }
    done = subprocess.run(
        [sys.executable, "-m", f"services.{service}"],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == EXIT_CREDENTIALS, done.stderr[-2000:]
    assert f"refused user '{service}'" in done.stderr and "Traceback" not in done.stderr
