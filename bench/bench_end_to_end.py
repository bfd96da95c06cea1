"""End-to-end latency: a bar entering aegis:bars → the websocket update that carries blocks
for it reaching a browser-like client, with the full pipeline running (features, direction,
seller, buyer, gateway as separate processes on a real Redis).

Bars are published one at a time at a steady pace (live-like, not a flood), each stamped
when XADD returns; the client notes when each engine's block for that bar's as_of arrives.
With ``--wait-replicas 1`` a replica follows the Redis and every write waits for it (WAIT,
AEGIS_REDIS_WAIT_REPLICAS): the cost of durable acknowledgement on the same path (printed,
not written: docs/BENCHMARKS.md compares such runs by hand).
Usage: python -m bench.bench_end_to_end [--bars 300] [--rate 20] [--model-dir var/models]
       [--wait-replicas 1]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import numpy as np
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from bench.sections import write_section
from services.ingest.sources.file_replay import FileReplaySource, ReplayWindow
from shared.bus.publish import Bus
from shared.config import Settings
from shared.contract.schemas import Bar
from shared.logs import configure_logging
from shared.redis_ops.server import RedisServer
from tests.ports import free_port
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent

ENGINES = ("market", "direction", "seller", "buyer")


def as_epoch(value: str) -> int:
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())


def listen(url: str, arrivals: dict[tuple[str, int], float], stop: threading.Event) -> None:
    with ws_connect(url, max_size=None) as ws:
        while not stop.is_set():
            try:
                raw = ws.recv(timeout=0.5)
            except TimeoutError:
                continue
            except ConnectionClosed:  # the gateway stopping at the end of the run
                return
            now = time.perf_counter()
            message = json.loads(raw)
            sections = message.get("blocks") or message.get("document") or {}
            for engine in ENGINES:
                block = sections.get(engine)
                if isinstance(block, dict) and block.get("as_of"):
                    arrivals.setdefault((engine, as_epoch(block["as_of"])), now)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bars", type=int, default=300)
    parser.add_argument("--rate", type=float, default=20.0, help="bars per second")
    parser.add_argument("--model-dir", default=str(ROOT / "var" / "models"))
    parser.add_argument("--wait-replicas", type=int, default=0, help="durable acknowledgement")
    args = parser.parse_args()
    configure_logging("WARNING")
    load_at_start = os.getloadavg()[0]
    events = [
        e
        for e in FileReplaySource(
            ROOT / "data",
            ReplayWindow(daily_from="2020-01-01", intraday_from="2021-03-01", end="2021-03-05"),
        ).events()
        if isinstance(e, Bar)
    ]
    first_timed = 1614570300  # 2021-03-01 09:15 IST: the sessions before it warm up
    warmup = [e for e in events if e.open_time < first_timed]
    timed = [e for e in events if e.interval == "1m" and e.open_time >= first_timed][: args.bars]
    with (
        tempfile.TemporaryDirectory() as tmp,
        RedisServer(free_port(), "bench", Path(tmp)) as server,
        contextlib.ExitStack() as replicas,
    ):
        if args.wait_replicas:  # a replica follows the Redis; every write waits for it
            replicas.enter_context(server.replica(free_port(), Path(tmp) / "replica"))
            wait_for(server.replicas_online, timeout_s=30, message="the replica in sync")
        port = free_port()
        env = {
            **os.environ,
            "AEGIS_REDIS_WAIT_REPLICAS": str(args.wait_replicas),
            "AEGIS_REDIS_URL": server.url,
            "AEGIS_LOG_LEVEL": "WARNING",
            "AEGIS_MODEL_DIR": args.model_dir,
            "AEGIS_GATEWAY_PORT": str(port),
            "AEGIS_BLOCK_MS": "1000",
            "AEGIS_FRESHNESS_INTRADAY_S": str(10**9),
            "AEGIS_FRESHNESS_DAILY_S": str(10**9),
        }
        procs = [
            subprocess.Popen([sys.executable, "-m", f"services.{name}"], env=env, cwd=ROOT)
            for name in ("features", "direction", "seller", "buyer", "gateway")
        ]
        try:
            settings = Settings(
                redis_url=server.url,
                embedded_redis=False,
                redis_wait_replicas=args.wait_replicas,
            )
            bus = Bus(server.client(), settings)
            bus.publish_bars(warmup)
            arrivals: dict[tuple[str, int], float] = {}
            stop = threading.Event()
            deadline = time.monotonic() + 120
            while True:  # gateway up and the warm-up processed by every engine
                try:
                    listener = threading.Thread(
                        target=listen,
                        daemon=True,
                        args=(f"ws://127.0.0.1:{port}/ws", arrivals, stop),
                    )
                    with ws_connect(f"ws://127.0.0.1:{port}/ws", open_timeout=1):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            listener.start()
            last_warm = max(b.open_time for b in warmup) + 60
            while not all(
                any(k[0] == e and k[1] >= last_warm - 60 for k in arrivals) for e in ENGINES
            ):
                if time.monotonic() > deadline:
                    raise SystemExit(f"pipeline not ready: saw {sorted({k[0] for k in arrivals})}")
                time.sleep(0.1)
            sent: dict[int, float] = {}
            for bar in timed:
                bus.publish_bars([bar])
                sent[bar.open_time + 60] = time.perf_counter()
                time.sleep(1 / args.rate)
            settle = time.monotonic() + 10
            while time.monotonic() < settle and not all(
                (e, t) in arrivals for e in ENGINES for t in sent
            ):
                time.sleep(0.05)
            stop.set()
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(timeout=15)
    result: dict[str, object] = {"bars": len(sent), "rate_per_s": args.rate}
    for engine in (*ENGINES, "all"):
        if engine == "all":
            lat = [
                max(arrivals[(e, t)] for e in ENGINES) - s
                for t, s in sent.items()
                if all((e, t) in arrivals for e in ENGINES)
            ]
        else:
            lat = [arrivals[(engine, t)] - s for t, s in sent.items() if (engine, t) in arrivals]
        ms = np.array(lat) * 1000
        result[engine] = (
            {
                "received": len(lat),
                "p50_ms": round(float(np.percentile(ms, 50)), 1),
                "p99_ms": round(float(np.percentile(ms, 99)), 1),
                "max_ms": round(float(ms.max()), 1),
            }
            if len(lat)
            else {"received": 0}
        )
    print(json.dumps(result, indent=2))
    if not args.wait_replicas:  # the durable runs are compared by hand (BENCHMARKS.md)
        write_section("End to end", report(result, args, load_at_start))


def display_path(path: str) -> str:
    resolved = Path(path).resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else str(resolved)


def report(result: dict, args: argparse.Namespace, load: float) -> str:
    rows = "\n".join(
        f"| {engine} | {r['received']} | {r.get('p50_ms', '-')} | {r.get('p99_ms', '-')} "
        f"| {r.get('max_ms', '-')} |"
        for engine in (*ENGINES, "all")
        for r in [result[engine]]
    )
    return (
        f"`python -m bench.bench_end_to_end --bars {args.bars} --rate {args.rate}` on "
        f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}, load average at start {load:.1f}, "
        f"models from `{display_path(args.model_dir)}`. Features, direction, seller, buyer and "
        "gateway run as separate processes on a real redis-server; 1-minute bars of "
        "2021-03-01.. are published one at a time at a steady pace after a daily warm-up. "
        "Latency = XADD of a bar to aegis:bars returning → a websocket client receiving the "
        "update that carries that engine's block for the bar (`all`: the last of the four).\n\n"
        "| block | received | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|\n"
        f"{rows}\n\nFloor: p99 ≤ 10 ms for `all` on 2 cores."
    )


if __name__ == "__main__":
    main()
