"""What the gateway pays per block to enforce the document contract, on real engine blocks.

The blocks: the bundled files through the real stack in this process (a redis-server,
ingest of the positioning records, the intraday option chains of 2026-01-22..02-05 and the
bars, daily from 2025-06-01 and one-minute bars of 2026-01-22..23; the features worker,
then direction, seller and buyer with the models in --model-dir), their stream entries'
payloads saved to --blocks so a second run (or a run against another checkout) times the
very same bytes.

Timed per engine in CPU time of this process (the box is shared), every block once per
round, median over --rounds rounds, in microseconds per block: what the gateway does for a
block it shows, from the entry's fields: ``decode_block_parts`` (the header, the data's
msgpack parsed, not built) and ``contract_checked`` (the block limits, the data decoded into
the engine's contract struct, its map for the document); and ``contract_checked`` alone. The
seller's and buyer's blocks with a fresh chain apart (the seller's carries every per-strike
row).

Usage: python -m bench.bench_contract [--blocks var/bench/contract-entries.msgpack]
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
from services.gateway.contract_check import contract_checked
from shared.bus import replies, streams
from shared.config import PROJECT_ROOT, Settings
from shared.contract.codec import decode_block_parts
from shared.contract.schemas import SignalBlock
from shared.logs import configure_logging
from shared.redis_ops.server import RedisServer
from tests.ports import free_port

BLOCKS = PROJECT_ROOT / "var" / "bench" / "contract-entries.msgpack"
ENGINES = ("market", "direction", "seller", "buyer")
MAX_BYTES = 1 << 20
Fields = dict[bytes, bytes]


def collect(model_dir: Path) -> dict[str, list[Fields]]:
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
            out: dict[str, list[Fields]] = {e: [] for e in ENGINES}
            for _, fields in replies.xrange(client, streams.BLOCKS):
                parts = decode_block_parts(fields)
                assert parts is not None
                out[parts[0].engine].append({k: fields[k] for k in (b"t", b"v", b"d")})
            client.close()
    assert all(len(out[e]) == snapshots for e in ENGINES[1:]), {e: len(b) for e, b in out.items()}
    return out


def median_us(check: Callable[[Any], Any], items: list[Any], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.process_time()
        for item in items:
            check(item)
        times.append((time.process_time() - start) / len(items) * 1e6)
    return statistics.median(times)


def shown(fields: Fields) -> SignalBlock:
    """The gateway's work for a block it shows, from its entry's fields."""
    parts = decode_block_parts(fields)
    assert parts is not None
    block = contract_checked(*parts, MAX_BYTES)
    assert isinstance(block, SignalBlock)
    return block


def measure(saved: dict[str, list[Fields]], rounds: int) -> list[tuple[str, int, float, float]]:
    rows = []
    for engine in ENGINES:
        groups = {engine: saved[engine]}
        if engine in ("seller", "buyer"):
            groups[f"{engine}, fresh chain"] = [
                f for f in saved[engine] if shown(f).data["chain"]["status"] == "fresh"
            ]
        for name, chosen in groups.items():
            parts = [p for f in chosen if (p := decode_block_parts(f)) is not None]
            whole = median_us(shown, chosen, rounds)  # every real block passes
            alone = median_us(lambda p: contract_checked(p[0], p[1], MAX_BYTES), parts, rounds)
            rows.append((name, len(chosen), whole, alone))
            print(
                f"{name}: {len(chosen)} blocks, decode + check {whole:.1f} us, "
                f"check alone {alone:.1f} us",
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
            "| blocks | count | decode + check CPU µs/block | contract_checked CPU µs/block |",
            "|---|---|---|---|",
            *(f"| {n} | {c} | {a:.1f} | {w:.1f} |" for n, c, a, w in rows),
        ]
        write_section("Document contract check", "\n".join(body))


if __name__ == "__main__":
    main()
