"""Resync amplification bench: one websocket client floods the gateway
with resync requests; how many bytes and snapshots come back, and how many log lines the
gateway writes.

Starts a private redis-server and ``python -m services.gateway`` (wall clock, INFO logs to a
file), publishes the four blocks, connects one client, sends ``--requests`` resync requests
as fast as it can and reads for ``--read-s`` seconds. Prints JSON.

    .venv/bin/python -m bench.bench_resync_flood --requests 5600 --read-s 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson
import websockets

from bench.bench_gateway import STARTUP_TIMEOUT_S, wait_alive
from shared.bus.publish import Bus, connect
from shared.config import PROJECT_ROOT, Settings
from shared.redis_ops.server import RedisServer
from tests.block_factory import all_blocks
from tests.ports import free_port

REQUEST = orjson.dumps({"type": "resync"}).decode()


async def flood(url: str, requests: int, read_s: float) -> dict[str, float]:
    async with websockets.connect(url, max_size=None) as ws:
        first = await ws.recv()
        sent_started = time.monotonic()
        for _ in range(requests):
            await ws.send(REQUEST)
        send_s = time.monotonic() - sent_started
        received = snapshots = 0
        deadline = time.monotonic() + read_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                raw = await asyncio.wait_for(ws.recv(), left)
            except TimeoutError:
                break
            received += len(raw)
            snapshots += orjson.loads(raw)["type"] == "snapshot"
    return {
        "snapshot_bytes": len(first),
        "request_bytes": requests * len(REQUEST),
        "send_s": round(send_s, 3),
        "received_bytes": received,
        "snapshots_received": snapshots,
    }


def run(requests: int, read_s: float) -> dict[str, object]:
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
            "AEGIS_LOG_LEVEL": "INFO",
            "AEGIS_EMBEDDED_REDIS": "false",
        }
        log_path = Path(tmp) / "gateway.log"
        with open(log_path, "wb") as log_file:
            gateway = subprocess.Popen(
                [sys.executable, "-m", "services.gateway"],
                env=env,
                cwd=PROJECT_ROOT,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
            try:
                base = f"http://127.0.0.1:{port}"
                wait_alive(base, gateway, STARTUP_TIMEOUT_S)
                settings = Settings(redis_url=redis_server.url, embedded_redis=False)
                client = connect(settings)
                bus = Bus(client, settings)
                for block in all_blocks():
                    bus.publish(block)
                deadline = time.monotonic() + STARTUP_TIMEOUT_S
                while httpx.get(base + "/api/v1/document").json()["sequence"] < 4:
                    if time.monotonic() > deadline:
                        raise TimeoutError("the four blocks never reached the document")
                    time.sleep(0.05)
                result = asyncio.run(flood(f"ws://127.0.0.1:{port}/ws", requests, read_s))
            finally:
                gateway.terminate()
                gateway.wait(timeout=10)
        lines = log_path.read_text(errors="replace").splitlines()
        return {
            **result,
            "amplification": round(result["received_bytes"] / result["request_bytes"], 3),
            "log_lines_total": len(lines),
            "log_lines_ws_resync": sum("ws_resync" in line for line in lines),
            "cpus": os.cpu_count(),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5600, help="about 95 KB of requests")
    parser.add_argument("--read-s", type=float, default=5.0)
    args = parser.parse_args()
    print(orjson.dumps(run(args.requests, args.read_s), option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
