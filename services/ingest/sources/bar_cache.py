"""On-disk cache of final bars per series, so a restart does not refetch history.

One msgpack file per (symbol, interval) under the cache folder, rewritten atomically. Only
final bars are stored: a forming bar is never served from the cache.
"""

from __future__ import annotations

from pathlib import Path

from shared.contract.codec import pack, unpack
from shared.contract.schemas import SCHEMA_VERSION, Bar
from shared.logs import get_logger

INTRADAY_KEEP_S = 35 * 86400  # Yahoo serves 1m for 30 days, 5m for 60; keep what helps

log = get_logger("ingest.bar_cache")


class BarCache:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def _path(self, symbol: str, interval: str) -> Path:
        return self.folder / f"{symbol}_{interval}.msgpack"

    def load(self, symbol: str, interval: str) -> list[Bar]:
        """Cached final bars of one series, oldest first; [] when absent or unreadable."""
        path = self._path(symbol, interval)
        if not path.exists():
            return []
        try:
            data = unpack(path.read_bytes())
            if data.get("schema_version") != SCHEMA_VERSION:
                raise ValueError(f"schema version {data.get('schema_version')}")
            return [Bar.model_validate(b) for b in data["bars"]]
        except Exception as exc:  # a damaged cache only costs a refetch
            log.warning("bar_cache_unreadable", path=str(path), error=str(exc))
            return []

    def store(self, symbol: str, interval: str, bars: list[Bar]) -> None:
        """Write the final bars of one series (newer values win per open_time)."""
        final = {b.open_time: b for b in bars if b.final}
        if not final:
            return
        ordered = [final[t] for t in sorted(final)]
        if interval != "1d":
            horizon = ordered[-1].open_time - INTRADAY_KEEP_S
            ordered = [b for b in ordered if b.open_time >= horizon]
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(symbol, interval)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(
            pack(
                {
                    "schema_version": SCHEMA_VERSION,
                    "bars": [b.model_dump(mode="python") for b in ordered],
                }
            )
        )
        tmp.replace(path)
