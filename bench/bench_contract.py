"""What the gateway pays per block to enforce the document contract, on real engine blocks.

The blocks: the bundled files through the real stack in this process (a redis-server,
ingest of the positioning records, the intraday option chains of 2026-01-22..02-05 and the
bars, daily from 2025-06-01 and one-minute bars of 2026-01-22..23; the features worker,
then direction, seller and buyer with the models in --model-dir), saved to --blocks so a
second run (or a run against another checkout) times the very same blocks.

Timed per engine in CPU time of this process (the box is shared), every block once per
round, median over --rounds rounds: the section
check alone (``shared.contract.document.validate_section`` on the section as the document holds
it) and the gateway's whole run-time check (``contract_rejection``: JSON size, then the
section), in microseconds per block; the seller's and buyer's blocks with a fresh chain
apart (the seller's carries every per-strike row).

Usage: python -m bench.bench_contract [--blocks var/bench/contract-blocks.msgpack]
       [--model-dir var/models] [--rounds 15] [--write]   (--write: docs/BENCHMARKS.md)
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import redis

from bench.sections import write_section
from services.gateway.assembler import section
from services.gateway.contract_check import contract_rejection
from shared.bus import replies, streams
from shared.config import PROJECT_ROOT, Settings
from shared.contract.codec import decode
from shared.contract.document import validate_section
from shared.contract.schemas import SignalBlock
from shared.logs import configure_logging
from shared.redis_ops.server import RedisServer
from tests.ports import free_port

BLOCKS = PROJECT_ROOT / "var" / "bench" / "contract-blocks.msgpack"
ENGINES = ("market", "direction", "seller", "buyer")
MAX_BYTES = 1 << 20


def collect(model_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """Every block the real engines publish for the bundled window, by engine."""
    from services.buyer.main import BuyerWorker
    from services.direction.main import DirectionWorker
    from services.features.main import FeaturesWorker
    from services.ingest.main import IngestService
    from services.ingest.sources.chain_file import ChainFileSource
    from services.ingest.sources.file_replay import FileReplaySource, ReplayWindow
    from services.ingest.sources.positioning_file import PositioningFileSource
    from services.seller.main import SellerWorker

    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(free_port(), "bench", Path(tmp) / "redis")
        with server:
            files = Settings()
            settings = Settings(
                redis_url=server.url,
                redis_port=server.port,
                redis_password="bench",
                embedded_redis=False,
                model_dir=model_dir,
                var_dir=Path(tmp) / "var",
                block_ms=100,
                clock="event",
                log_level="WARNING",
                chain_max_age_s=3 * 3600,  # daily blocks see the afternoon's last chain
            )
            client = redis.Redis.from_url(server.url)
            assert files.participant_oi_file is not None and files.chain_file is not None
            positioning = PositioningFileSource(files.participant_oi_file, files.futures_file)
            IngestService(settings, positioning, client=client).run()
            IngestService(settings, ChainFileSource(files.chain_file), client=client).run()
            window = ReplayWindow(
                daily_from="2025-06-01", intraday_from="2026-01-22", end="2026-01-23"
            )
            IngestService(
                settings, FileReplaySource(settings.data_dir, window), client=client
            ).run()
            FeaturesWorker(settings, "bench").run(max_idle_reads=2)
            snapshots = len(replies.xrange(client, streams.FEATURES))
            for worker in (DirectionWorker, SellerWorker, BuyerWorker):
                engine = worker(settings, consumer="bench")
                engine.run(max_idle_reads=2)
            out: dict[str, list[dict[str, Any]]] = {e: [] for e in ENGINES}
            for _, fields in replies.xrange(client, streams.BLOCKS):
                block = decode(fields)
                assert isinstance(block, SignalBlock)
                out[block.engine].append(block.model_dump(mode="json"))
            client.close()
    assert all(len(out[e]) == snapshots for e in ENGINES[1:]), {e: len(b) for e, b in out.items()}
    return out


def median_us(check: Callable[[SignalBlock], Any], blocks: list[SignalBlock], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.process_time()
        for block in blocks:
            check(block)
        times.append((time.process_time() - start) / len(blocks) * 1e6)
    return statistics.median(times)


def measure(
    saved: dict[str, list[dict[str, Any]]], rounds: int
) -> list[tuple[str, int, float, float]]:
    rows = []
    for engine in ENGINES:
        blocks = [SignalBlock.model_validate(b) for b in saved[engine]]
        groups = {engine: blocks}
        if engine in ("seller", "buyer"):
            groups[f"{engine}, fresh chain"] = [
                b for b in blocks if b.data["chain"]["status"] == "fresh"
            ]
        for name, chosen in groups.items():
            for b in chosen:  # every real block passes: what is timed is the accepting path
                assert contract_rejection(b, MAX_BYTES) is None, name
            alone = median_us(
                lambda b: validate_section(b.engine, section(b, b.as_of * 1000)), chosen, rounds
            )
            whole = median_us(lambda b: contract_rejection(b, MAX_BYTES), chosen, rounds)
            rows.append((name, len(chosen), alone, whole))
            print(
                f"{name}: {len(chosen)} blocks, section {alone:.1f} us, whole check {whole:.1f} us",
                flush=True,
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--blocks", type=Path, default=BLOCKS)
    parser.add_argument("--model-dir", type=Path, default=PROJECT_ROOT / "var" / "models")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    configure_logging("WARNING", json=True)
    load = Path("/proc/loadavg").read_text().split()[:3]
    if not args.blocks.exists():
        args.blocks.parent.mkdir(parents=True, exist_ok=True)
        args.blocks.write_bytes(msgpack.packb(collect(args.model_dir)))
    rows = measure(msgpack.unpackb(args.blocks.read_bytes()), args.rounds)
    if args.write:
        body = [
            f"`python -m bench.bench_contract --rounds {args.rounds}` on {os.cpu_count()} cores, "
            f"{time.strftime('%Y-%m-%d', time.gmtime())}, load average at start {' '.join(load)}.",
            "",
            "| blocks | count | validate_section CPU µs/block | contract_rejection CPU µs/block |",
            "|---|---|---|---|",
            *(f"| {n} | {c} | {a:.1f} | {w:.1f} |" for n, c, a, w in rows),
        ]
        write_section("Document contract check", "\n".join(body))


if __name__ == "__main__":
    main()
