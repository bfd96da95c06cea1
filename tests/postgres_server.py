"""A real PostgreSQL server for the tests, from Debian's package (as redis-server is for the
bus): ``initdb`` in a temporary folder, ``postgres`` on a free loopback port, stopped at the
end. PostgreSQL refuses to run as root, so under root it runs as the package's ``postgres``
user (``runuser``)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg

from tests.ports import free_port
from tests.waiting import wait_for

USER = "aegis"


def binaries() -> Path | None:
    """The folder of initdb and postgres (Debian keeps them off PATH), or None."""
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(versions[0]).parent if versions else None


class PostgresServer:
    def __init__(self) -> None:
        folder = binaries()
        if folder is None:
            raise RuntimeError("PostgreSQL is not installed (scripts/install-system-deps.sh)")
        self.bin = folder
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="aegis-pg-"))
        self.run_as: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self.run_as = ["runuser", "-u", "postgres", "--"]
        self.proc: subprocess.Popen[bytes] | None = None
        self.databases = 0

    def new_database(self) -> str:
        """A fresh, empty database on this server; its SQLAlchemy URL."""
        self.databases += 1
        name = f"history_{self.databases}"
        admin = self._connect("postgres")
        assert admin is not None
        with admin:
            admin.execute(f"CREATE DATABASE {name}")
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{name}"

    def _connect(self, dbname: str) -> psycopg.Connection | None:
        try:
            return psycopg.connect(
                host="127.0.0.1", port=self.port, user=USER, dbname=dbname, autocommit=True
            )
        except psycopg.OperationalError:
            return None

    def start(self) -> PostgresServer:
        data = self.root / "data"
        initdb = ["-D", str(data), "-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync"]
        subprocess.run(
            [*self.run_as, str(self.bin / "initdb"), *initdb], check=True, capture_output=True
        )
        self._launch()
        return self

    def _launch(self) -> None:
        options = ["-D", str(self.root / "data"), "-p", str(self.port), "-k", str(self.root)]
        options += ["-c", "fsync=off", "-c", "listen_addresses=127.0.0.1"]
        self.proc = subprocess.Popen(
            [*self.run_as, str(self.bin / "postgres"), *options],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        ready = wait_for(lambda: self._connect("postgres"), 60, "PostgreSQL to accept")
        if ready is not None:
            ready.close()

    def restart(self) -> None:
        """A fast shutdown (open sessions are cut, as in a crash of the connection), then the
        server again on the same data and port."""
        assert self.proc is not None
        stop = [str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast", "-w", "stop"]
        subprocess.run([*self.run_as, *stop], check=True, capture_output=True, timeout=60)
        self.proc.wait(timeout=60)
        self._launch()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()  # runuser passes it on: a smart shutdown
            self.proc.wait(timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
