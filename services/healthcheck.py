"""Container healthcheck: exit 0 when this host's worker reported healthy recently."""

from __future__ import annotations

import socket
import sys

import redis

from shared.bus.worker import read_health
from shared.config import get_settings


def main() -> int:
    settings = get_settings()
    try:
        reports = read_health(redis.Redis.from_url(settings.redis_url, socket_timeout=3))
    except redis.RedisError as exc:
        print(f"redis unreachable: {exc}")
        return 1
    host = socket.gethostname()
    mine = [r for r in reports if str(r.get("consumer", "")).startswith(host)]
    if not mine:
        print(f"no live health report from {host}")
        return 1
    print(", ".join(f"{r['service']}: {r['status']}" for r in mine))
    return 0


if __name__ == "__main__":
    sys.exit(main())
