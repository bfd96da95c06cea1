"""Typed reads of values other processes wrote to Redis hashes (series state, latest-block
times). Any service user can write such a field, so one that does not parse is quarantined
for that read alone: logged with its key and reason, counted (``quarantined``, shown in
health), and read as absent, which the writers' scripts also do, so the next good write
heals it. It never raises: a corrupt field must not end a consumer's loop."""

from __future__ import annotations

import math
from collections import Counter

from shared.logs import get_logger

log = get_logger("held")
quarantined: Counter[str] = Counter()  # "key field" -> corrupt reads in this process
last_reason: dict[str, str] = {}


def _quarantine(key: str, field: str, raw: bytes | str, kind: str) -> None:
    name = f"{key} {field}"
    quarantined[name] += 1
    reason = f"{name} = {raw[:40]!r} is not {kind}; read as absent"
    last_reason[name] = reason
    if quarantined[name] == 1 or quarantined[name] % 1000 == 0:
        log.warning("corrupt_key_quarantined", key=key, field=field, reason=reason)


def held_int(key: str, field: str, raw: bytes | str | None) -> int | None:
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        _quarantine(key, field, raw, "an integer")
        return None


def held_float(key: str, field: str, raw: bytes | str | None) -> float | None:
    if raw is None or raw in (b"", ""):
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if math.isfinite(value):
        return value
    _quarantine(key, field, raw, "a finite number")
    return None


def degraded_reasons() -> list[str]:
    return [
        f"{count} corrupt read(s) of {name}: {last_reason[name]}"
        for name, count in sorted(quarantined.items())
    ]
