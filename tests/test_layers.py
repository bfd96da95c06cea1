"""shared/ in layers: the pure packages (the contract, the market's rules, features, signals,
models) import nothing that talks to Redis, a database or the network, and no service; only
``bus``, ``redis_ops`` and ``history`` do I/O (docs/ARCHITECTURE.md, "shared/ in layers")."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1] / "shared"
PURE = ("contract", "market", "features", "signals", "models", "config.py", "logs.py")
IO_IMPORTS = (
    "redis",
    "rq",
    "fastapi",
    "sqlalchemy",
    "alembic",
    "websockets",
    "requests",
    "yfinance",
    "shared.bus",
    "shared.redis_ops",
    "shared.history",
    "services",
)


def _runtime_imports(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """Every module a file imports when it runs (``if TYPE_CHECKING:`` blocks skipped)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in (
            "TYPE_CHECKING",
            "typing.TYPE_CHECKING",
        ):
            node.body = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


def _pure_files() -> list[Path]:
    files: list[Path] = []
    for name in PURE:
        path = SHARED / name
        files.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return files


def _is_io(module: str) -> bool:
    return any(module == io or module.startswith(io + ".") for io in IO_IMPORTS)


def test_no_pure_module_imports_io() -> None:
    found = [
        f"{path.relative_to(SHARED.parent)} line {line}: {module}"
        for path in _pure_files()
        for line, module in _runtime_imports(ast.parse(path.read_text(), filename=str(path)))
        if _is_io(module)
    ]
    assert len(_pure_files()) > 50
    assert found == []


def test_the_check_sees_an_io_import() -> None:
    tree = ast.parse("import os\nfrom shared.bus import streams\nimport redis.client\n")
    assert [m for _, m in _runtime_imports(tree) if _is_io(m)] == ["shared.bus", "redis.client"]
    guarded = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from shared.bus import x\n"
    assert [m for _, m in _runtime_imports(ast.parse(guarded)) if _is_io(m)] == []
