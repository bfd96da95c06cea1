"""python -m services.stack: the whole system on one machine.

Starts a real redis-server (embedded default), trains any missing model, starts every
service as its own process, waits until each reports healthy, prints where to look, and
stops everything cleanly on Ctrl-C.

The embedded Redis runs with one ACL user per service (shared.redis_ops.acl): passwords are
generated once into var/redis/credentials.json (0600), each service is started as its own
user, the stack itself is ``admin`` and watches Redis memory.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta

import redis

from services import dataset
from shared.bus import streams
from shared.bus.lifecycle import prepare, stop_on_signals
from shared.bus.worker import read_health
from shared.config import PROJECT_ROOT, Settings
from shared.logs import get_logger
from shared.market import calendar
from shared.redis_ops.acl import credentials_file, load_or_create_passwords, service_env
from shared.redis_ops.memory import watch_memory
from shared.redis_ops.server import RedisServer, is_reachable

WORKERS = ("features", "direction", "seller", "buyer", "alerts", "history")
log = get_logger("stack")


def available(service: str) -> bool:
    return importlib.util.find_spec(f"services.{service}.__main__") is not None


def start_service(
    service: str, env: dict[str, str], passwords: dict[str, str] | None, *args: str
) -> subprocess.Popen[bytes]:
    """Each service gets its own session, so a terminal Ctrl-C reaches only the stack, which
    then stops the services in order and Redis last. With ``passwords`` (embedded Redis) it
    connects as its own ACL user."""
    log.info("starting", process=service)
    if passwords is not None:
        env = {**env, **service_env(service, passwords, env["AEGIS_REDIS_URL"])}
    return subprocess.Popen(
        [sys.executable, "-m", f"services.{service}", *args],
        env=env,
        cwd=PROJECT_ROOT,
        start_new_session=True,
    )


def wait_healthy(
    client: redis.Redis,
    services: list[str],
    timeout_s: float,
    procs: dict[str, subprocess.Popen[bytes]],
    stop: threading.Event,
) -> list[str]:
    """Services that have not reported health within the timeout (or before ``stop``)."""
    deadline = time.monotonic() + timeout_s
    missing = list(services)
    while missing and time.monotonic() < deadline and not stop.is_set():
        for name, proc in procs.items():
            if proc.poll() is not None and name != "ingest":
                raise SystemExit(f"{name} exited with {proc.returncode} during start-up")
        reported = {r["service"] for r in read_health(client)}
        missing = [s for s in services if s not in reported]
        stop.wait(0.2)
    return missing


def replay_train_end(settings: Settings) -> str | None:
    """The last session models may have seen for this run to be out of sample. The first
    session a trader watches (the intraday or paced start of a file replay) is computed
    from the daily features of the session before it, so the models must end one session
    earlier still (an engine calls a model in sample when its input's session lies inside
    the training window). An explicit AEGIS_TRAIN_END wins; live sources and recordings
    use every model as is."""
    if settings.train_end is not None or settings.source != "file":
        return settings.train_end
    starts = [d for d in (settings.replay_intraday_from, settings.replay_paced_from) if d]
    if not starts:
        return None
    day = calendar.to_date(min(starts))
    inputs = calendar.previous_session(day - timedelta(days=1))  # daily_as_of of the first
    return str(calendar.previous_session(inputs - timedelta(days=1)))


def ensure_models(settings: Settings) -> Settings:
    """Models for this run, trained (or picked from the registry) so a replay is out of
    sample; returns the settings the services get (with the training end of the run)."""
    train_end = replay_train_end(settings)
    settings = settings.model_copy(update={"train_end": train_end})
    if not available("trainer"):
        log.warning("no_trainer", note="engines will run degraded on heuristics")
        return settings
    from services.trainer.pipeline import ensure_models as train_missing

    started = time.monotonic()
    trained = train_missing(settings)
    log.info(
        "models_ready",
        trained=trained,
        train_end=train_end or "all data",
        seconds=round(time.monotonic() - started, 1),
    )
    return settings


def embedded_redis(settings: Settings) -> tuple[RedisServer | None, dict[str, str], Settings]:
    """Start the embedded Redis with its ACL users unless it runs already; the passwords and
    the stack's own (admin) settings."""
    passwords = load_or_create_passwords(credentials_file(settings.var_dir))
    server = RedisServer(
        settings.redis_port,
        settings.redis_password,
        settings.var_dir / "redis",
        appendfsync=settings.redis_appendfsync,
        passwords=passwords,
        maxmemory_mb=settings.redis_maxmemory_mb,
    )
    admin = settings.model_copy(update={"redis_url": server.url, "redis_user": "admin"})
    if is_reachable(server.url):
        log.info("redis_running", address=server.address)
        return None, passwords, admin
    server.start()
    version = server.client().info("server")["redis_version"]
    log.info(
        "redis_started",
        address=server.address,
        data=str(server.data_dir),
        version=version,
        users="acl",
    )
    return server, passwords, admin


def main() -> None:
    settings = prepare()
    dataset.claim(settings)  # one var/ holds one dataset: refuse before anything starts
    server: RedisServer | None = None
    passwords: dict[str, str] | None = None
    if settings.embedded_redis:
        server, passwords, settings = embedded_redis(settings)
    env = services_env(settings, passwords)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    stop = threading.Event()
    try:
        settings = ensure_models(settings)  # Ctrl-C here: KeyboardInterrupt, nothing started
        if settings.train_end:  # the trainer worker retrains on the same window
            env["AEGIS_TRAIN_END"] = settings.train_end
        stop_on_signals(stop.set)
        client = redis.Redis.from_url(settings.redis_url)
        threading.Thread(
            target=watch_memory, args=(client, settings, stop), name="redis-memory", daemon=True
        ).start()
        if not start_services(client, env, passwords, procs, stop):
            return
        print_addresses(settings)
        supervise(procs, stop)
    finally:
        stop_services(procs)
        if server:
            server.stop()
        log.info("stopped")


def services_env(settings: Settings, passwords: dict[str, str] | None) -> dict[str, str]:
    """The environment every service starts with (with ``passwords``, each service's own
    user is added in ``start_service``)."""
    env = {
        **os.environ,
        "AEGIS_REDIS_URL": settings.redis_address if passwords else settings.redis_url,
        "AEGIS_EMBEDDED_REDIS": "false",
    }
    if passwords is not None:
        env.pop("AEGIS_REDIS_USER", None)
        env.pop("AEGIS_REDIS_PASSWORD", None)
    return env


def start_services(
    client: redis.Redis,
    env: dict[str, str],
    passwords: dict[str, str] | None,
    procs: dict[str, subprocess.Popen[bytes]],
    stop: threading.Event,
) -> bool:
    """Start the workers, the gateway and the trainer into ``procs``, wait until the workers
    report health, then start ingest; False when stopped before that."""
    workers = [w for w in WORKERS if available(w)]
    for name in workers:
        procs[name] = start_service(name, env, passwords)
    if available("gateway"):
        procs["gateway"] = start_service("gateway", env, passwords)
    if available("trainer"):
        procs["trainer"] = start_service("trainer", env, passwords, "worker")
    missing = wait_healthy(client, workers, 60, procs, stop)
    if stop.is_set():
        return False
    if missing:
        log.error("not_healthy", services=missing)
    procs["ingest"] = start_service("ingest", env, passwords)
    return True


def print_addresses(settings: Settings) -> None:
    print(
        f"\nAegisMatrix is running.\n"
        f"  dashboard:  http://{settings.gateway_host}:{settings.gateway_port}/\n"
        f"  document:   http://{settings.gateway_host}:{settings.gateway_port}/api/v1/document"
        f"  (also written to {settings.output_path})\n"
        f"  redis:      {settings.redis_address}  streams {streams.BARS}, "
        f"{streams.FEATURES}, {streams.BLOCKS}, {streams.DEAD_LETTER}\n"
        f"Ctrl-C stops everything.\n",
        flush=True,
    )


def supervise(procs: dict[str, subprocess.Popen[bytes]], stop: threading.Event) -> None:
    """Until ``stop``: a process that exits stops the stack (ingest ending its replay with
    AEGIS_REPLAY_WATCH off does not; with it on, ingest stays up and itself replays again
    if Redis loses its data)."""
    while not stop.is_set():
        for name, proc in list(procs.items()):
            code = proc.poll()
            if code is not None and not (name == "ingest" and code == 0):
                log.error("process_exited", process=name, code=code)
                stop.set()
            elif code == 0 and name == "ingest":
                log.info("replay_finished", note="engines and dashboard keep running")
                procs.pop(name)
        stop.wait(1.0)


def stop_services(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    """SIGTERM to every running service, then wait for each (15 s, then kill)."""
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for name, proc in procs.items():
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            log.warning("killing", process=name)
            proc.kill()


def cli() -> None:
    """``python -m services.stack`` and ``aegis-stack``."""
    try:
        main()
    except KeyboardInterrupt:  # during training, before the services started
        sys.exit(130)


if __name__ == "__main__":
    cli()
