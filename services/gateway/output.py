"""Writes the document file atomically (tmp file + os.replace), coalescing bursts: only the
newest pending document is written, by one task, so files never go back in time."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from shared.logs import get_logger

log = get_logger("gateway")


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class OutputWriter:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._pending: bytes | None = None
        self._wake = asyncio.Event()
        self.written = 0

    def submit(self, data: bytes) -> None:
        self._pending = data
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            await self.flush()

    async def flush(self) -> None:
        self._wake.clear()
        data, self._pending = self._pending, None
        if data is None:
            return
        try:
            await asyncio.to_thread(write_atomic, self.path, data)
            self.written += 1
        except OSError as exc:
            log.error("output_write_failed", path=str(self.path), error=str(exc))
