"""docker-compose.yml really run: images built from Debian's packages and wheels, the stack
started with podman, the document read with the token, direction scaled to three replicas,
the stack taken down. Needs root and podman (scripts/install-system-deps.sh installs it)."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from shared.config import PROJECT_ROOT
from shared.redis_acl import SERVICE_USERS
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
        _remove_leftovers(env["COMPOSE_PROJECT_NAME"])


def _remove_leftovers(project: str) -> None:
    """podman-compose's down leaves scaled replicas (and so the network and volumes)."""
    podman = ["podman"]
    env = {**os.environ, "CONTAINERS_CONF": str(SCRIPTS / "podman" / "containers.conf")}
    label = f"label=io.podman.compose.project={project}"
    for kind in ("ps", "volume", "network"):
        listing = [*podman, kind, "ls" if kind != "ps" else "-a", "-q", "--filter", label]
        ids = subprocess.run(listing, env=env, capture_output=True, text=True).stdout.split()
        if ids:
            remove = [*podman, "rm" if kind == "ps" else kind, *(["rm"] if kind != "ps" else [])]
            depend = ["--depend"] if kind == "ps" else []
            subprocess.run([*remove, "-f", *depend, *ids], env=env, capture_output=True)


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
