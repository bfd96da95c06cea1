"""Websocket fan-out bench: N concurrent clients on one gateway process (loopback).

Starts a private redis-server and ``python -m services.gateway`` (wall clock), connects N
websocket clients spread over a few client processes, then publishes market blocks at a
fixed rate. Latency = client receipt time - the publisher's time just before XADD, for every
(client, block). Prints JSON with p50/p99/max and the number of missed updates.

    .venv/bin/python -m bench.bench_gateway --clients 1000 --blocks 60
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import websockets

from shared.bus.publish import Bus, connect
from shared.config import PROJECT_ROOT, Settings
from shared.redis_ops.server import RedisServer
from tests.block_factory import make_block
from tests.ports import free_port

ROOT = Path(__file__).resolve().parent.parent

BASE_AS_OF = int(time.time()) - 3600  # in the past: the gateway refuses blocks ahead of the clock
STARTUP_TIMEOUT_S = 30.0


async def _client_main(
    url: str, n: int, blocks: int, ready: mp.Queue, out: mp.Queue, deadline_s: float
) -> None:
    """n connections; each records (as_of, receipt time) of every market update."""
    receipts: list[tuple[str, float]] = []
    missed = 0

    async def one() -> None:
        nonlocal missed
        async with websockets.connect(
            url, max_size=None, open_timeout=60, ping_interval=None
        ) as ws:
            await ws.recv()  # snapshot
            ready.put(1)
            got = 0
            end = time.monotonic() + deadline_s
            while got < blocks and time.monotonic() < end:
                try:
                    raw = await asyncio.wait_for(ws.recv(), max(end - time.monotonic(), 0.01))
                except TimeoutError:
                    break
                now = time.time()
                message = orjson.loads(raw)
                if message["type"] == "update" and "market" in message["blocks"]:
                    receipts.append((message["blocks"]["market"]["as_of"], now))
                    got += 1
                elif message["type"] == "snapshot":
                    missed += 1
            missed += blocks - got

    results = await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True)
    errors = [repr(r) for r in results if isinstance(r, BaseException)]
    out.put((receipts, missed, errors[:3], len(errors)))


def _client_process(
    url: str, n: int, blocks: int, ready: mp.Queue, out: mp.Queue, deadline_s: float
) -> None:
    asyncio.run(_client_main(url, n, blocks, ready, out, deadline_s))


def iso_of(as_of: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(as_of))


def wait_alive(base: str, gateway: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Until GET /healthz answers 200; raises if the gateway exits or the deadline passes."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        if gateway.poll() is not None:
            raise RuntimeError(f"gateway exited with code {gateway.returncode} during start-up")
        try:
            response = httpx.get(base + "/healthz", timeout=1)
            if response.status_code == 200:
                return
            last = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(0.05)
    raise TimeoutError(f"gateway not alive at {base} after {timeout_s}s ({last})")


def run(clients: int, blocks: int, interval_s: float, procs: int) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        RedisServer(free_port(), "bench", Path(tmp) / "redis", aof=False) as redis_server,
    ):
        port = free_port()
        env = {
            **os.environ,
            "AEGIS_REDIS_URL": redis_server.url,
            "AEGIS_GATEWAY_PORT": str(port),
            "AEGIS_OUTPUT_PATH": str(Path(tmp) / "doc.json"),
            "AEGIS_CLOCK": "wall",
            "AEGIS_LOG_LEVEL": "WARNING",
            "AEGIS_EMBEDDED_REDIS": "false",
        }
        gateway = subprocess.Popen(
            [sys.executable, "-m", "services.gateway"], env=env, cwd=PROJECT_ROOT
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_alive(base, gateway, STARTUP_TIMEOUT_S)
            settings = Settings(redis_url=redis_server.url, embedded_redis=False)
            bus = Bus(connect(settings), settings)
            bus.publish(make_block("market", as_of=BASE_AS_OF, freshness_limit_s=10**6))

            ready: mp.Queue = mp.Queue()
            out: mp.Queue = mp.Queue()
            deadline = blocks * interval_s + 60
            shares = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
            workers = [
                mp.Process(
                    target=_client_process,
                    args=(f"ws://127.0.0.1:{port}/ws", n, blocks, ready, out, deadline),
                )
                for n in shares
            ]
            for w in workers:
                w.start()
            connect_started = time.monotonic()
            for _ in range(clients):
                ready.get(timeout=120)
            connect_s = time.monotonic() - connect_started

            sent: dict[str, float] = {}
            for i in range(1, blocks + 1):
                block = make_block(
                    "market", as_of=BASE_AS_OF + i, spot=25_000.0 + i, freshness_limit_s=10**6
                )
                sent[iso_of(block.as_of)] = time.time()
                bus.publish(block)
                time.sleep(interval_s)

            latencies: list[float] = []
            missed = 0
            errors: list[str] = []
            error_count = 0
            for _ in workers:
                receipts, m, errs, n_err = out.get(timeout=deadline + 60)
                latencies += [(t - sent[a]) * 1000 for a, t in receipts if a in sent]
                missed += m
                errors += errs
                error_count += n_err
            for w in workers:
                w.join(timeout=30)
            metrics = httpx.get(base + "/metrics").text
        finally:
            gateway.terminate()
            gateway.wait(timeout=30)
    latencies.sort()

    def q(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))], 2)

    push = {
        line.split('le="')[1].split('"')[0]: float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("aegis_gateway_push_latency_seconds_bucket")
    }
    total = push.get("+Inf") or 1.0
    return {
        "clients": clients,
        "blocks": blocks,
        "interval_ms": interval_s * 1000,
        "client_processes": procs,
        "deliveries": len(latencies),
        "missed": missed,
        "client_errors": error_count,
        "error_samples": errors,
        "connect_all_s": round(connect_s, 2),
        "latency_ms": {
            "p50": q(0.50),
            "p90": q(0.90),
            "p99": q(0.99),
            "max": q(1.0),
            "mean": round(statistics.fmean(latencies), 2),
        }
        if latencies
        else None,
        "server_push_share_within_s": {
            le: round(c / total, 4)
            for le, c in push.items()
            if le in ("0.01", "0.05", "0.1", "0.25", "0.5")
        },
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--blocks", type=int, default=60)
    parser.add_argument("--interval-ms", type=float, default=250.0)
    parser.add_argument("--procs", type=int, default=4, help="client processes")
    args = parser.parse_args()
    result = run(args.clients, args.blocks, args.interval_ms / 1000, args.procs)
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    p99 = (result["latency_ms"] or {}).get("p99")
    sys.exit(0 if p99 is not None and p99 <= 250 and not result["missed"] else 1)


if __name__ == "__main__":
    main()
