"""The Redis memory alarm: a health report for Redis itself, from INFO memory.

With ``maxmemory`` and ``noeviction`` a full Redis refuses writes instead of dropping stream
entries; this turns the approach to that wall into a degraded health report (service
``redis``, which the gateway's health section lists) and a ``redis_memory_alarm`` log line
once used memory crosses ``settings.redis_memory_alarm`` of maxmemory. It needs INFO, an admin
command: the stack runs it (``python -m shared.redis_memory`` runs it alone, e.g. in compose).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson
import redis

from shared import streams
from shared.config import Settings, get_settings
from shared.logs import configure_logging, get_logger

SERVICE = "redis"
log = get_logger("redis-memory")


def memory_report(info: dict[str, Any], settings: Settings, consumer: str) -> dict[str, Any]:
    """A health report from the fields of INFO memory."""
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
    return {
        "service": SERVICE,
        "consumer": consumer,
        "status": "degraded" if reasons else "ok",
        "degraded_reasons": reasons,
        "used_memory": used,
        "maxmemory": cap,
        "maxmemory_policy": policy,
        "source": "redis INFO memory",
        "reported_at": int(time.time() * 1000),
    }


def check_memory(client: redis.Redis, settings: Settings) -> dict[str, Any]:
    """Read INFO memory, log an alarm when it is due, store the health report; return it."""
    consumer = settings.redis_address.split("//", 1)[-1].split("/", 1)[0]
    report = memory_report(client.info("memory"), settings, consumer)
    if report["degraded_reasons"]:
        log.warning("redis_memory_alarm", reasons=report["degraded_reasons"])
    client.set(
        streams.health(SERVICE, consumer),
        orjson.dumps(report),
        ex=settings.health_ttl_s,
    )
    return report


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
    from shared.bus import connect

    current = get_settings()
    configure_logging(current.log_level, current.log_json)
    watch_memory(connect(current), current, threading.Event())
