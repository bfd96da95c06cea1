"""The Redis memory alarm: a health report for Redis itself, from INFO memory.

With ``maxmemory`` and ``noeviction`` a full Redis refuses writes instead of dropping stream
entries; this turns the approach to that wall into a degraded health report (service
``redis``, which the gateway's health section lists) and a ``redis_memory_alarm`` log line
once used memory crosses ``settings.redis_memory_alarm`` of maxmemory. It needs INFO, an admin
command: the stack runs it (``python -m shared.redis_ops.memory`` runs it alone, e.g. in compose).
"""

from __future__ import annotations

import threading
from typing import Any

import redis

from shared.bus.lifecycle import HealthReporter, prepare, stop_on_signals
from shared.config import Settings
from shared.logs import get_logger

SERVICE = "redis"
log = get_logger("redis-memory")


def memory_state(info: dict[str, Any], settings: Settings) -> tuple[list[str], dict[str, Any]]:
    """The degraded reasons and the report's fields from the fields of INFO memory."""
    used = int(info["used_memory"])
    cap = int(info.get("maxmemory", 0))
    policy = str(info.get("maxmemory_policy", ""))
    reasons = []
    if cap == 0:
        reasons.append("no maxmemory: Redis can grow until the host runs out of memory")
    elif used >= settings.redis_memory_alarm * cap:
        reasons.append(
            f"used memory {used / 2**20:.0f} MiB is {used / cap:.0%} of maxmemory "
            f"{cap / 2**20:.0f} MiB (alarm at {settings.redis_memory_alarm:.0%}); "
            "at 100% every write is refused"
        )
    if policy != "noeviction":
        reasons.append(f"maxmemory-policy {policy} may evict stream entries; want noeviction")
    return reasons, {
        "used_memory": used,
        "maxmemory": cap,
        "maxmemory_policy": policy,
        "source": "redis INFO memory",
    }


def check_memory(client: redis.Redis, settings: Settings) -> dict[str, Any]:
    """Read INFO memory, log an alarm when it is due, store the health report; return it."""
    consumer = settings.redis_address.split("//", 1)[-1].split("/", 1)[0]
    reasons, fields = memory_state(client.info("memory"), settings)
    if reasons:
        log.warning("redis_memory_alarm", reasons=reasons)
    reporter = HealthReporter(client, settings, SERVICE, consumer)
    try:
        return reporter.write(reasons, fields)
    except redis.exceptions.OutOfMemoryError:  # full: the report itself is refused
        log.error("redis_memory_report_not_stored", reasons=reasons)
        return {"status": "degraded", "degraded_reasons": reasons, **fields}


def watch_memory(
    client: redis.Redis, settings: Settings, stop: threading.Event, every_s: float = 5.0
) -> None:
    """``check_memory`` every ``every_s`` until ``stop``; Redis errors are logged, not fatal."""
    while not stop.is_set():
        try:
            check_memory(client, settings)
        except redis.RedisError as exc:
            log.warning("redis_memory_unreadable", error=str(exc))
        stop.wait(every_s)


if __name__ == "__main__":
    from shared.bus.publish import connect

    current = prepare()
    stopped = threading.Event()
    stop_on_signals(stopped.set)
    watch_memory(connect(current), current, stopped)
