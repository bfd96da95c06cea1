"""The package as `pip install .` installs it (the container image does): every file the
code reads beside its modules ships with it, and every console script names a callable."""

from __future__ import annotations

import importlib
import tomllib
from fnmatch import fnmatch

from shared.config import PROJECT_ROOT

PYPROJECT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())


def test_every_data_file_of_the_packages_is_package_data() -> None:
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]
    missing = []
    for top in ("shared", "services"):
        for path in (PROJECT_ROOT / top).rglob("*"):
            if not path.is_file() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
                continue
            relative = path.relative_to(PROJECT_ROOT)
            shipped = any(
                relative.is_relative_to(package.replace(".", "/"))
                and fnmatch(relative.relative_to(package.replace(".", "/")).as_posix(), glob)
                for package, globs in patterns.items()
                for glob in globs
            )
            if not shipped:
                missing.append(relative.as_posix())
    assert missing == [], "not in [tool.setuptools.package-data]: left out of the wheel"


def test_every_console_script_names_a_callable() -> None:
    scripts = PYPROJECT["project"]["scripts"]
    assert {"aegis-stack", "aegis-ingest", "aegis-gateway", "aegis-trainer"} <= set(scripts)
    for name, target in scripts.items():
        module, _, attribute = target.partition(":")
        assert callable(getattr(importlib.import_module(module), attribute)), name
