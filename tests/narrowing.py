"""Narrow what a test expects to one type: the test fails, naming the odd item, otherwise."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T")


def every(items: Iterable[object], cls: type[T]) -> list[T]:
    """``items`` as a list, each a ``cls``."""
    found: list[T] = []
    for item in items:
        assert isinstance(item, cls), f"expected {cls.__name__}, got {item!r}"
        found.append(item)
    return found
