"""docker-compose.yml runs the same services the local stack runs (no Docker engine here, so
this checks the file itself: every command names a real module, secrets are required)."""

from __future__ import annotations

import importlib.util
import re

import yaml

from shared.config import PROJECT_ROOT
from shared.redis_ops.acl import SERVICE_USERS


def test_compose_services_run_real_modules() -> None:
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {
        "redis",
        "ingest",
        "features",
        "direction",
        "seller",
        "buyer",
        "gateway",
        "trainer",
    } <= set(services)
    for name, spec in services.items():
        if name == "redis":
            command = " ".join(spec["command"])
            assert "--appendonly yes" in command and "--aclfile" in command
            assert "--maxmemory-policy noeviction" in command
            continue
        modules = re.findall(r"-m\s+([\w.]+)", " ".join(spec["command"]))
        assert modules, name
        for module in modules:
            assert importlib.util.find_spec(module) is not None, (name, module)
    assert "AEGIS_API_TOKEN" in str(services["gateway"]["environment"])
    # secrets are required, never silently defaulted
    raw = (PROJECT_ROOT / "docker-compose.yml").read_text()
    assert "${AEGIS_API_TOKEN:?" in raw and ":-change-me" not in raw
    for user in SERVICE_USERS:  # one required password per Redis user, none defaulted
        assert f"${{AEGIS_REDIS_PASSWORD_{user.upper()}:?" in raw, user
    for name, spec in services.items():  # every service connects as its own Redis user
        if name not in ("redis", "redis-acl"):
            env = spec["environment"]
            assert env["AEGIS_REDIS_USER"] in SERVICE_USERS, name
            assert env["AEGIS_REDIS_PASSWORD"].startswith(
                f"${{AEGIS_REDIS_PASSWORD_{env['AEGIS_REDIS_USER'].upper()}:?"
            ), name
    trainer = " ".join(services["trainer"]["command"])
    assert trainer == "python -m services.trainer serve"  # ensure, then the worker
