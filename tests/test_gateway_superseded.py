"""In a read batch, a block that a later admitted block of its engine supersedes is judged by
its header only (its data never reaches the document); the document and the counters are those
of judging every block whole, also when the later block is refused or turns out malformed."""

from __future__ import annotations

import asyncio
import random
import threading
from pathlib import Path

import msgspec
import pytest
import redis

import services.gateway.consumer as consumer_module
from services.gateway.consumer import BlockConsumer, superseded
from services.gateway.contract_check import contract_checked
from services.gateway.core import Gateway
from services.gateway.guard import Rejection
from services.gateway.hub import HubLimits
from services.gateway.metrics import GatewayMetrics
from services.gateway.output import OutputWriter
from shared.bus import replies, streams
from shared.bus.publish import Bus
from shared.config import Settings
from shared.contract.codec import decode, decode_block_parts, encode
from shared.contract.schemas import SignalBlock
from shared.market.clock import EventClock
from tests.block_factory import AS_OF, make_block
from tests.gateway_harness import metric_value
from tests.test_gateway_guard import poisoned


def gateway_for(tmp_path: Path, name: str) -> tuple[Gateway, GatewayMetrics]:
    metrics = GatewayMetrics()
    writer = OutputWriter(tmp_path / f"{name}.json", metrics)
    gateway = Gateway(EventClock(), True, metrics, writer, HubLimits(64, 15.0, 1.0, 5.0))
    gateway.open_epoch(0)
    return gateway, metrics


def test_a_head_is_the_block_but_its_data() -> None:
    block = make_block("seller", as_of=AS_OF)
    fields = {
        k.encode(): (v if isinstance(v, bytes) else str(v).encode())
        for k, v in encode(block).items()
    }
    parts = decode_block_parts(fields)
    assert parts is not None
    head, data = parts
    assert head.data == {} and msgspec.msgpack.decode(data) == block.data
    assert head.model_dump(exclude={"data"}) == block.model_dump(exclude={"data"})
    assert decode(fields) == block
    truncated = {**fields, b"d": fields[b"d"][:-3]}
    assert decode_block_parts(truncated) is None  # the data is parsed to its end
    not_a_map = encode(block.model_copy(update={"data": {"x": 1}}))
    assert (
        decode_block_parts({**fields, b"d": not_a_map["d"].replace(b"\x81\xa1x\x01", b"\x01")})
        is None
    )
    assert decode_block_parts({**fields, b"t": b"bar"}) is None


def test_superseded_blocks_are_not_built_and_the_document_is_as_if_all_were(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = make_block("market", as_of=AS_OF, spot=25_600.0)
    shown = make_block("market", as_of=AS_OF + 60, spot=25_650.0)
    seller = make_block("seller", as_of=AS_OF)
    refused = poisoned("market")  # later, but outside the calendar: the guard refuses it
    not_json = make_block("market", as_of=AS_OF + 120, spot=1.0, extra={"blob": b"\x00"})
    batch = [first, seller, shown, refused, not_json]
    bus = Bus(redis_client, settings)
    for block in batch:
        bus.publish(block)

    gateway, metrics = gateway_for(tmp_path, "batch")
    consumer = BlockConsumer(settings, gateway, metrics)
    built: list[str] = []
    # this consumer's builds only: a gateway of an earlier test still stopping in its own
    # thread (the harness waits 10 s for it) may read the same stream with the same decode
    here = threading.get_ident()

    def counting_check(head: SignalBlock, data: bytes, max_bytes: int) -> SignalBlock | Rejection:
        if threading.get_ident() == here:
            built.append(f"{head.engine}@{head.as_of}")
        return contract_checked(head, data, max_bytes)

    monkeypatch.setattr(consumer_module, "contract_checked", counting_check)
    consumer.last_id = "0-0"

    async def read() -> None:
        await consumer._read()
        await consumer.close()

    asyncio.run(read())
    # the seller block and the market block shown; not the first (superseded), not the
    # refused; the not-JSON one was built, failed its check and left, so `shown` was built
    assert sorted(built) == sorted(
        [f"seller@{AS_OF}", f"market@{AS_OF + 120}", f"market@{AS_OF + 60}"]
    )
    reference, ref_metrics = gateway_for(tmp_path, "reference")
    verdicts = [reference.on_block(b, 1.0) for b in (first, seller, shown)]
    assert verdicts == ["new", "new", "new"]
    assert gateway.state.sections == reference.state.sections
    assert gateway.state.sequence == reference.state.sequence == 3
    assert gateway.state.sections["market"]["spot"] == 25_650.0
    for engine, kind in (("market", "intraday"), ("seller", "intraday")):
        assert metric_value(metrics.accepted, engine, kind) == metric_value(
            ref_metrics.accepted, engine, kind
        )
    assert metric_value(metrics.rejected, "market", "outside_calendar") == 1
    assert metric_value(metrics.rejected, "market", "contract") == 1  # the non-JSON one
    assert (
        consumer.last_id == replies.xrevrange(redis_client, streams.BLOCKS, count=1)[0][0].decode()
    )
    assert isinstance(gateway.state.blocks["market"], SignalBlock)
    assert gateway.state.blocks["market"].data == shown.data


def test_superseded_matches_the_rule_block_by_block() -> None:
    """A later admitted block of the engine with a newer as_of, or the same as_of and
    another digest, supersedes; checked against that rule on random batches."""
    rng = random.Random(11)
    for _ in range(300):
        blocks = {
            i: make_block(rng.choice(["market", "seller"]), as_of=AS_OF + 60 * rng.randint(0, 3))
            for i in range(rng.randint(0, 12))
        }
        blocks = {i: b.model_copy(update={"digest": rng.choice("ab")}) for i, b in blocks.items()}
        expected = {
            i
            for i, b in blocks.items()
            if any(
                j > i
                and c.engine == b.engine
                and (c.as_of > b.as_of or (c.as_of == b.as_of and c.digest != b.digest))
                for j, c in blocks.items()
            )
        }
        assert superseded(blocks) == expected
