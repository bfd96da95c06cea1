"""Redis key names, in one place."""

from __future__ import annotations

PREFIX = "aegis"

BARS = f"{PREFIX}:bars"
CHAINS = f"{PREFIX}:chains"
FEATURES = f"{PREFIX}:features"
BLOCKS = f"{PREFIX}:blocks"
DEAD_LETTER = f"{PREFIX}:deadletter"
MODEL_EVENTS = f"{PREFIX}:models"

LATEST_BLOCKS = f"{PREFIX}:blocks:latest"
DAILY_FEATURES = f"{PREFIX}:features:daily"
HEALTH_PREFIX = f"{PREFIX}:health:"
ALERTS = f"{PREFIX}:alerts"  # alert records (JSON), bounded; services.alerts writes them
ALERTS_PREFIX = f"{PREFIX}:alerts:"  # the alerts service's own keys: state, lease, claims
# what the feed is doing: shared.market.clock.RunInfo as JSON, written by ingest
RUN = f"{PREFIX}:run"
DURABLE = f"{PREFIX}:durable"  # written before each WAIT, on the WAIT's own connection (bus)
EPOCH = f"{PREFIX}:epoch"  # the data's epoch: gone or replaced = Redis lost its data (run_epoch)


def series_state(symbol: str, interval: str) -> str:
    """Hash of the last bar published for one (symbol, interval) series."""
    return f"{PREFIX}:series:{symbol}:{interval}"


def series_digests(symbol: str, interval: str, day: str) -> str:
    """Hash open_time -> digest of the bars of one series and IST day (idempotency); it
    expires ``digest_ttl_s`` after its last write, so digests do not grow without bound."""
    return f"{PREFIX}:digests:{symbol}:{interval}:{day}"


def checkpoint(service: str) -> str:
    return f"{PREFIX}:checkpoint:{service}"


def health(service: str, consumer: str) -> str:
    return f"{HEALTH_PREFIX}{service}:{consumer}"
