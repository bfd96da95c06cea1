"""The document file writer: a burst of changes is a few writes of the newest document, each
serialised only when written."""

from __future__ import annotations

import asyncio
import functools
import time
from pathlib import Path

from services.gateway.metrics import GatewayMetrics
from services.gateway.output import OutputWriter


def test_a_burst_of_changes_is_a_few_writes_of_the_newest_document(tmp_path: Path) -> None:
    path = tmp_path / "doc.json"
    renders: list[int] = []

    def render(i: int) -> bytes:
        renders.append(i)
        return f'{{"sequence": {i}}}'.encode()

    async def scenario() -> tuple[int, float]:
        writer = OutputWriter(path, GatewayMetrics(), min_interval_s=0.25)
        task = asyncio.create_task(writer.run())
        started = time.monotonic()
        for i in range(1, 61):  # 60 changes over ~0.6 s
            writer.submit(functools.partial(render, i))
            await asyncio.sleep(0.01)
        while not (path.exists() and path.read_bytes() == b'{"sequence": 60}'):
            await asyncio.sleep(0.02)  # until the newest document reaches the file
        elapsed = time.monotonic() - started
        task.cancel()
        return writer.written, elapsed

    written, elapsed = asyncio.run(asyncio.wait_for(scenario(), 10))
    assert written <= elapsed / 0.25 + 1  # at most one write per interval
    assert written == len(renders) and renders[-1] == 60  # only written documents rendered
    assert renders == sorted(renders)  # never back in time
