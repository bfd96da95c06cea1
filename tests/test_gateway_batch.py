"""The gateway applies a read batch of blocks as one change: one websocket update folding
first_sequence..sequence, one document serialisation, and counters as if one by one."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson

from services.gateway.core import Gateway
from services.gateway.hub import Client, HubLimits
from services.gateway.metrics import GatewayMetrics
from services.gateway.output import OutputWriter
from shared.market.clock import EventClock
from tests.block_factory import AS_OF, all_blocks, make_block
from tests.gateway_harness import metric_value


def test_a_batch_is_one_update_with_exact_counters(tmp_path: Path) -> None:
    metrics = GatewayMetrics()
    writer = OutputWriter(tmp_path / "doc.json", metrics)
    gateway = Gateway(EventClock(), True, metrics, writer, HubLimits(64, 15.0, 1.0, 5.0))
    gateway.open_epoch(0)
    client = Client(websocket=None, queue=asyncio.Queue(64))  # type: ignore[arg-type]
    gateway.hub.clients.add(client)

    assert gateway.on_blocks(all_blocks(), 1.0) == ["new"] * 4
    sequence, text, received_at = client.queue.get_nowait()
    update = orjson.loads(text)
    assert (update["first_sequence"], update["sequence"], sequence) == (1, 4, 4)
    assert set(update["blocks"]) == {"market", "direction", "seller", "buyer"}

    batch = [
        make_block("market"),  # duplicate of the current one
        make_block("market", as_of=AS_OF + 60, spot=25_650.0),
        make_block("market", as_of=AS_OF + 60, spot=25_660.0),  # update within the batch
        make_block("seller", as_of=AS_OF - 60),  # older
    ]
    assert gateway.on_blocks(batch, 2.0) == ["duplicate", "new", "update", "older"]
    assert client.queue.qsize() == 1  # one update for the batch
    sequence, text, received_at = client.queue.get_nowait()
    update = orjson.loads(text)
    assert (update["first_sequence"], update["sequence"], sequence) == (5, 6, 6)
    assert set(update["blocks"]) == {"market"} and update["blocks"]["market"]["spot"] == 25_660.0
    assert received_at == 2.0

    assert metric_value(metrics.duplicates, "market") == 1
    assert metric_value(metrics.older, "seller") == 1
    assert metric_value(metrics.accepted, "market", "intraday") == 3
    assert metric_value(metrics.changes) == 6
    assert metric_value(metrics.last_as_of, "market") == AS_OF + 60
    document = orjson.loads(writer.pending() or b"")  # the file gets the batch's document
    assert document["sequence"] == 6 and document["market"]["spot"] == 25_660.0
    # same as_of, another digest than the one before it: an update each, two changes
    assert gateway.on_blocks(batch[1:3], 3.0) == ["update", "update"]
    update = orjson.loads(client.queue.get_nowait()[1])
    assert (update["first_sequence"], update["sequence"]) == (7, 8)
