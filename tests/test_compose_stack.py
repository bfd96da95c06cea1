"""docker-compose.yml really run: images built from Debian's packages and wheels, the stack
started with podman, the document read with the token, direction scaled to three replicas,
every container stopped by SIGTERM within its grace period, and `down -v` leaving nothing.
Needs root and podman (scripts/install-system-deps.sh installs it)."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from shared.config import PROJECT_ROOT
from shared.redis_ops.acl import SERVICE_USERS
from tests.ports import free_port
from tests.waiting import wait_for

pytestmark = pytest.mark.compose

SCRIPTS = PROJECT_ROOT / "scripts"
START_TIMEOUT_S = 900  # trains the models inside the trainer container on first start


def _missing_tools() -> str | None:
    if os.geteuid() != 0:
        return "the compose smoke test runs podman as root"
    for tool in ("podman", "debootstrap"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/install-system-deps.sh)"
    return None


@pytest.fixture(scope="module")
def compose_env() -> Iterator[dict[str, str]]:
    reason = _missing_tools()
    if reason:
        pytest.skip(reason)
    subprocess.run(["bash", str(SCRIPTS / "build-images.sh")], check=True, timeout=1800)
    env = {
        **os.environ,
        **{  # one password per Redis ACL user; they must survive being put into a URL
            f"AEGIS_REDIS_PASSWORD_{user.upper()}": secrets.token_urlsafe(16) + "/+@:"
            for user in SERVICE_USERS
        },
        "AEGIS_API_TOKEN": secrets.token_urlsafe(24),
        "AEGIS_PUBLISH": f"127.0.0.1:{free_port()}",
        "COMPOSE_PROJECT_NAME": f"aegissmoke{secrets.token_hex(3)}",
    }
    try:
        yield env
    finally:
        compose(env, "down", "-v", "-t", "5", check=False)


def podman(env: dict[str, str], *args: str, stderr: bool = False) -> str:
    """podman's output (``stderr``: both streams, as ``podman logs`` gives a container's)."""
    conf = {**env, "CONTAINERS_CONF": str(SCRIPTS / "podman" / "containers.conf")}
    done = subprocess.run(["podman", *args], env=conf, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout + (done.stderr if stderr else "")


def labelled(env: dict[str, str], kind: str, *filters: str) -> list[str]:
    """IDs of the project's containers (``kind`` "ps"), networks or volumes."""
    listing = ["ps", "-a"] if kind == "ps" else [kind, "ls"]
    label = f"label=io.podman.compose.project={env['COMPOSE_PROJECT_NAME']}"
    extra = [arg for f in filters for arg in ("--filter", f)]
    return podman(env, *listing, "-q", "--filter", label, *extra).split()


def compose(env: dict[str, str], *args: str, check: bool = True) -> str:
    done = subprocess.run(
        ["bash", str(SCRIPTS / "compose.sh"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"compose {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def get(env: dict[str, str], path: str, token: bool = True) -> httpx.Response:
    headers = {"Authorization": f"Bearer {env['AEGIS_API_TOKEN']}"} if token else {}
    return httpx.get(f"http://{env['AEGIS_PUBLISH']}{path}", headers=headers, timeout=5)


def _document(env: dict[str, str]) -> dict | None:
    try:
        response = get(env, "/api/v1/document")
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None


def test_compose_stack_serves_the_document_and_scales_direction(
    compose_env: dict[str, str],
) -> None:
    env = compose_env
    compose(env, "up", "-d")

    def blocks_from_every_engine() -> dict | None:
        doc = _document(env)
        if doc and all(doc.get(section) for section in ("market", "direction", "seller", "buyer")):
            return doc
        return None

    doc = wait_for(
        blocks_from_every_engine,
        timeout_s=START_TIMEOUT_S,
        message="a block from every engine",
        interval_s=2.0,
    )
    assert doc["market"]["spot"] > 0
    assert get(env, "/api/v1/document", token=False).status_code == 401

    compose(env, "up", "-d", "--scale", "direction=3")

    def three_direction_replicas() -> bool:
        doc = _document(env)
        engines = (doc or {}).get("health", {}).get("engines", {})
        return engines.get("direction", {}).get("replicas") == 3

    wait_for(
        three_direction_replicas,
        timeout_s=300,
        message="three direction replicas in health",
        interval_s=2.0,
    )


STOP_GRACE_S = 30  # podman sends SIGKILL after it: a container killed exits 137


def test_every_service_stops_on_sigterm_and_down_removes_everything(
    compose_env: dict[str, str],
) -> None:
    """Every service but Redis stopped at once, as `down` does first: each ends on SIGTERM
    (exit 0) well within the grace period; then `down -v` leaves no container, network or
    volume of the project."""
    env = compose_env
    service = '{{.ID}} {{index .Labels "com.docker.compose.service"}}'
    listed = podman(
        env,
        "ps",
        "--filter",
        f"label=io.podman.compose.project={env['COMPOSE_PROJECT_NAME']}",
        "--format",
        service,
    )
    running = [line.split()[0] for line in listed.splitlines() if line.split()[1] != "redis"]
    assert len(running) >= 11, "the services run, direction as three replicas"  # the test above

    started = time.monotonic()
    podman(env, "stop", "-t", str(STOP_GRACE_S), *running)
    elapsed = time.monotonic() - started
    names_codes = podman(
        env, "inspect", "--format", "{{.Name}} {{.State.ExitCode}}", *running
    ).splitlines()
    killed = [line for line in names_codes if not line.endswith(" 0")]
    logs = {
        line: podman(env, "logs", "--tail", "15", line.split()[0], stderr=True)[-1500:]
        for line in killed
    }
    assert not killed, f"exited other than 0 on SIGTERM (137: killed at the grace period): {logs}"
    assert elapsed < STOP_GRACE_S / 2, f"stopping the services took {elapsed:.1f} s"

    compose(env, "down", "-v", "-t", "5")
    for kind in ("ps", "network", "volume"):
        assert labelled(env, kind) == [], f"{kind} left after down -v"
