"""Start a service or the trainer's rq worker, and stop a process tree for good: an rq worker's work
horse leaves the worker's process group (rq calls setpgrp in it), so killing the group alone
leaves the horse training and publishing after the test has moved on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

from shared.config import PROJECT_ROOT
from tests.waiting import wait_for


def trainer_worker(
    env: dict[str, str], *args: str, output: IO[Any] | int = subprocess.DEVNULL
) -> subprocess.Popen[bytes]:
    """``python -m services.trainer worker *args`` in its own session (stop it with
    ``kill_tree``), stdout and stderr to ``output``."""
    return trainer_command(env, "worker", *args, output=output)


def trainer_command(
    env: dict[str, str], command: str, *args: str, output: IO[Any] | int = subprocess.DEVNULL
) -> subprocess.Popen[bytes]:
    """``python -m services.trainer <command> *args`` in its own session."""
    return subprocess.Popen(
        [sys.executable, "-m", "services.trainer", command, *args],
        cwd=PROJECT_ROOT,
        env=env,
        start_new_session=True,
        stdout=output,
        stderr=subprocess.STDOUT,
    )


def start_service(name: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``python -m services.<name>`` in its own session, stdout and stderr appended to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", f"services.{name}"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _parents() -> dict[int, int]:
    """pid -> parent pid of every live process (from /proc)."""
    out = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone while listing
            continue
        out[int(stat.parent.name)] = int(fields[1])
    return out


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")  # a zombie runs nothing any more


def kill_tree(proc: subprocess.Popen, timeout_s: float = 30.0) -> None:
    """SIGKILL ``proc`` (started with start_new_session=True), its process group and every
    descendant in another group, then wait until none of them runs. The group is stopped
    first so no new child can be forked between listing and killing."""
    try:
        os.killpg(proc.pid, signal.SIGSTOP)
    except ProcessLookupError:  # the process and its whole group have exited already
        proc.wait()
        return
    kids = descendants(proc.pid)
    os.killpg(proc.pid, signal.SIGKILL)
    for pid in kids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    wait_for(lambda: all(_gone(p) for p in kids), timeout_s, f"the children of {proc.pid} to die")
