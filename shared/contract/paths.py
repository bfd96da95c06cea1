"""Reading a block's data (or any JSON-like tree): a value by its path (keys for mappings,
integers for list positions; None wherever the path leads nowhere) and a value as a number."""

from __future__ import annotations

from typing import Any

Path = tuple[str | int, ...]


def value_at(tree: Any, path: Path) -> Any:
    node = tree
    for part in path:
        if isinstance(part, int):
            node = node[part] if isinstance(node, list | tuple) and part < len(node) else None
        else:
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return None
    return node


def number(value: Any) -> float | None:
    """An int or float (not a bool) as a float; None for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
