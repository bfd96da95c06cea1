"""A year of one-minute bars through the whole stack, as fast as it goes.

Every service runs as its own process on a real redis-server (AOF everysec): ingest replays
the bundled files (daily bars from --daily-from for the warm-up, 1-minute bars of
--intraday-from..--end, AEGIS_REPLAY_SPEED=0, AEGIS_CLOCK=event), features, direction,
seller, buyer and the gateway consume. The clock runs from the first bar on aegis:bars (its
stream id) until the gateway has received the block of the last snapshot from every engine
(its ``aegis_gateway_last_block_received_seconds``), checked in the gateway's document.

Each service's own throughput: items it published over the span from its first to its last
output (stream ids), and items per CPU second of its process (what it could do without
waiting for its input). Then one seller replica alone reads the intraday snapshots again
(its group rewound to the first one): intraday snapshots per second.

Usage: python -m bench.bench_replay [--model-dir DIR] [--intraday-from 2021-01-01]
       [--end 2021-12-31]  (without --model-dir, models are trained into a temp folder)
       [--alerts] [--history] [--wait-replicas 1]  (comparison runs: printed, not written)
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import msgpack
import redis

from bench import bench_alerts
from bench.sections import write_section
from shared.bus import replies, streams
from shared.bus.worker import read_health
from shared.redis_ops.server import RedisServer
from tests.ports import free_port

ROOT = Path(__file__).resolve().parent.parent

WORKERS = ("features", "direction", "seller", "buyer")
ENGINES = ("market", "direction", "seller", "buyer")
TIMEOUT_S = 1800
T = TypeVar("T")


def id_seconds(entry_id: bytes | str) -> float:
    """Stream ids start with the Redis server's wall clock in ms."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-")[0]) / 1000


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (and its waited-for children) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def gateway_metrics(port: int) -> dict[str, dict[str, float]]:
    """engine -> {metric: value} of the gateway's per-engine last-block gauges."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        if line.startswith("aegis_gateway_last_block_") and 'engine="' in line:
            name = line.split("{", 1)[0].removeprefix("aegis_gateway_last_block_")
            engine = line.split('engine="', 1)[1].split('"', 1)[0]
            out.setdefault(engine, {})[name] = float(line.rsplit(" ", 1)[1])
    return out


def gateway_document(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/document", timeout=10) as r:
        return json.loads(r.read())


def train(model_dir: Path, env: dict[str, str]) -> None:
    print(f"training models into {model_dir} ...", flush=True)
    subprocess.run(
        [sys.executable, "-m", "services.trainer", "train"],
        cwd=ROOT,
        env={**env, "AEGIS_MODEL_DIR": str(model_dir)},
        check=True,
    )


def wait(
    condition: Callable[[], T | None],
    what: str,
    timeout_s: float = TIMEOUT_S,
    every_s: float = 0.05,
) -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every_s)
    raise SystemExit(f"timed out waiting for {what}")


def block_spans(client: redis.Redis) -> dict[str, tuple[int, float, float]]:
    """engine -> (blocks, first id s, last id s) over aegis:blocks."""
    spans: dict[str, list[float]] = {}
    last = "-"
    while True:
        entries = replies.xrange(client, streams.BLOCKS, min=last, count=5000)
        if last != "-":
            entries = entries[1:]
        if not entries:
            break
        for raw_id, fields in entries:
            engine = msgpack.unpackb(fields[b"d"], raw=False)["engine"]
            t = id_seconds(raw_id)
            row = spans.setdefault(engine, [0, t, t])
            row[0] += 1
            row[2] = t
        last = entries[-1][0].decode()
    return {e: (int(n), a, b) for e, (n, a, b) in spans.items()}


def redis_usage(client: redis.Redis, pid: int) -> dict[str, Any]:
    """The Redis server's CPU seconds (its process), bytes sent to clients and, per command,
    calls and microseconds so far (INFO commandstats)."""
    stats = client.info("commandstats")
    return {
        "cpu_s": cpu_seconds(pid),
        "net_output_bytes": client.info("stats")["total_net_output_bytes"],
        "commands": {
            name.removeprefix("cmdstat_"): (int(row["calls"]), int(row["usec"]))
            for name, row in stats.items()
        },
    }


def redis_spent(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What the server did between two ``redis_usage`` readings: CPU s, MB sent, and the
    commands that took most of its time (calls, CPU s)."""
    spent = {
        name: (
            calls - before["commands"].get(name, (0, 0))[0],
            usec - before["commands"].get(name, (0, 0))[1],
        )
        for name, (calls, usec) in after["commands"].items()
    }
    top = sorted(spent.items(), key=lambda kv: -kv[1][1])[:8]
    return {
        "cpu_s": round(after["cpu_s"] - before["cpu_s"], 1),
        "sent_mb": round((after["net_output_bytes"] - before["net_output_bytes"]) / 1e6),
        "commands": {name: {"calls": c, "cpu_s": round(u / 1e6, 2)} for name, (c, u) in top},
    }


def stream_span(client: redis.Redis, stream: str) -> tuple[int, float, float]:
    first, last = (
        replies.xrange(client, stream, count=1),
        replies.xrevrange(client, stream, count=1),
    )
    return client.xlen(stream), id_seconds(first[0][0]), id_seconds(last[0][0])


def last_snapshot(client: redis.Redis) -> tuple[int, bytes]:
    """(as_of, stream id) of the newest feature snapshot."""
    raw_id, fields = replies.xrevrange(client, streams.FEATURES, count=1)[0]
    return msgpack.unpackb(fields[b"d"], raw=False)["as_of"], raw_id


def first_intraday(client: redis.Redis) -> tuple[bytes, int]:
    """(id just before the first intraday snapshot, intraday snapshots from there on)."""
    before, last, count = b"0-0", "-", 0
    found = None
    while True:
        entries = replies.xrange(client, streams.FEATURES, min=last, count=5000)
        if last != "-":
            entries = entries[1:]
        if not entries:
            break
        for raw_id, fields in entries:
            kind = msgpack.unpackb(fields[b"d"], raw=False)["kind"]
            if found is None and kind == "intraday":
                found = before
            if found is not None and kind == "intraday":
                count += 1
            before = raw_id
        last = entries[-1][0].decode()
    if found is None:
        raise SystemExit("no intraday snapshot on aegis:features")
    return found, count


def seller_alone(client: redis.Redis, env: dict[str, str]) -> dict[str, float]:
    """One seller replica re-reads every intraday snapshot: its group is rewound once it is
    up (model loading excluded), timed until it has acknowledged the last one."""
    start_id, intraday = first_intraday(client)
    last_id = replies.xrevrange(client, streams.FEATURES, count=1)[0][0]
    client.xgroup_destroy(streams.FEATURES, "seller")
    client.xgroup_create(streams.FEATURES, "seller", id="$")
    client.delete(*client.keys(streams.HEALTH_PREFIX + "seller*"))
    proc = subprocess.Popen([sys.executable, "-m", "services.seller"], env=env, cwd=ROOT)
    try:
        wait(lambda: any(r["service"] == "seller" for r in read_health(client)), "seller up")
        started = time.perf_counter()
        client.xgroup_setid(streams.FEATURES, "seller", start_id)

        def done() -> bool:
            group = next(g for g in client.xinfo_groups(streams.FEATURES) if g["name"] == b"seller")
            return group["pending"] == 0 and group["last-delivered-id"] == last_id

        wait(done, "the seller replica to finish", every_s=0.01)
        seconds = time.perf_counter() - started
        cpu = cpu_seconds(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {
        "intraday_snapshots": intraday,
        "seconds": round(seconds, 2),
        "snapshots_per_s": round(intraday / seconds),
        "cpu_seconds_incl_startup": round(cpu, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--daily-from", default="2020-01-01")
    parser.add_argument("--intraday-from", default="2021-01-01")
    parser.add_argument("--end", default="2021-12-31")
    parser.add_argument(
        "--alerts", action="store_true", help="run the alerts service (default rules) too"
    )
    parser.add_argument(
        "--alert-rules",
        choices=("default", "bench"),
        default="default",
        help="with --alerts: the shipped rules, or bench_alerts' 20 rules of every kind",
    )
    parser.add_argument(
        "--wait-replicas",
        type=int,
        default=0,
        help="durable acknowledgement: a replica follows, every write waits for it",
    )
    parser.add_argument(
        "--history",
        action="store_true",
        help="run the history service (SQLite, the embedded default) too",
    )
    args = parser.parse_args()
    load_at_start = Path("/proc/loadavg").read_text().strip()
    with tempfile.TemporaryDirectory() as tmp:
        base_env = {
            **os.environ,
            "AEGIS_LOG_LEVEL": "WARNING",
            "AEGIS_EMBEDDED_REDIS": "false",
        }
        model_dir = args.model_dir or Path(tmp) / "models"
        if not any(model_dir.glob("*/CURRENT")):
            train(model_dir, base_env)
        with (
            RedisServer(free_port(), "bench", Path(tmp), aof=True) as server,
            contextlib.ExitStack() as replicas,
        ):
            if args.wait_replicas:
                replicas.enter_context(server.replica(free_port(), Path(tmp) / "replica"))
                base_env["AEGIS_REDIS_WAIT_REPLICAS"] = str(args.wait_replicas)
                wait(server.replicas_online, "the replica in sync", timeout_s=60)
            result = replay(server, model_dir, args, base_env)
    result["load_average_at_start"] = load_at_start
    result["cores"] = os.cpu_count()
    print(json.dumps(result, indent=2))
    if args.alerts or args.history or args.wait_replicas:  # comparisons: printed only
        print(report(result, args))
    else:
        write_section("Replay", report(result, args))


def replay(
    server: RedisServer, model_dir: Path, args: argparse.Namespace, base_env: dict[str, str]
) -> dict:
    port = free_port()
    env = {
        **base_env,
        "AEGIS_REDIS_URL": server.url,
        "AEGIS_MODEL_DIR": str(model_dir),
        "AEGIS_CLOCK": "event",
        "AEGIS_GATEWAY_PORT": str(port),
        "AEGIS_OUTPUT_PATH": str(Path(server.data_dir) / "aegismatrix.json"),
        "AEGIS_SOURCE": "file",
        "AEGIS_REPLAY_SPEED": "0",
        "AEGIS_REPLAY_WATCH": "false",  # ingest exits when the replay is published
        "AEGIS_REPLAY_DAILY_FROM": args.daily_from,
        "AEGIS_REPLAY_INTRADAY_FROM": args.intraday_from,
        "AEGIS_REPLAY_END": args.end,
        # keep every block: the per-engine spans are read back from the block stream
        "AEGIS_BLOCKS_MAXLEN": "2000000",
    }
    if args.alerts and args.alert_rules == "bench":
        rules = Path(server.data_dir) / "rules.toml"
        rules.write_text(bench_alerts.RULES)
        env["AEGIS_ALERTS_RULES"] = str(rules)
    if args.history:
        env["AEGIS_HISTORY_URL"] = f"sqlite:///{Path(server.data_dir) / 'history.sqlite3'}"
    extras = (*(("alerts",) if args.alerts else ()), *(("history",) if args.history else ()))
    client = server.client()
    procs = {
        name: subprocess.Popen([sys.executable, "-m", f"services.{name}"], env=env, cwd=ROOT)
        for name in (*WORKERS, "gateway", *extras)
    }
    try:
        wait(
            lambda: {r["service"] for r in read_health(client)} >= {*WORKERS, *extras},
            "every worker to report health",
            timeout_s=300,
        )
        wait(lambda: _gateway_up(port), "the gateway", timeout_s=120)
        assert server.process is not None
        redis_before = redis_usage(client, server.process.pid)
        procs["ingest"] = subprocess.Popen(
            [sys.executable, "-m", "services.ingest"], env=env, cwd=ROOT
        )
        if procs["ingest"].wait(timeout=TIMEOUT_S) != 0:
            raise SystemExit("ingest failed")
        bars, first_bar_s, last_bar_s = stream_span(client, streams.BARS)

        def features_done() -> bool:
            group = next(g for g in client.xinfo_groups(streams.BARS) if g["name"] == b"features")
            return group["pending"] == 0 and group.get("lag") == 0

        wait(features_done, "features to consume every bar")
        final_as_of, _ = last_snapshot(client)

        def all_blocks_in() -> dict | None:
            gauges = gateway_metrics(port)
            if all(gauges.get(e, {}).get("as_of_seconds") == final_as_of for e in ENGINES):
                return gauges
            return None

        # the end time is the gauges' own receive time, so a slow poll loses no precision
        # (a /metrics scrape every 50 ms would cost the gateway CPU the replay then measures)
        gauges = wait(
            all_blocks_in, "the gateway to hold the last block of every engine", every_s=0.5
        )
        end_s = max(gauges[e]["received_seconds"] for e in ENGINES)
        redis_replay = redis_spent(redis_before, redis_usage(client, server.process.pid))
        extras_cpu_in_replay = {name: round(cpu_seconds(procs[name].pid), 1) for name in extras}
        behind = {  # how many blocks each group on aegis:blocks had still to read at the end
            g["name"].decode(): g.get("lag") for g in client.xinfo_groups(streams.BLOCKS)
        }
        # the services off the document's path finish on their own: every block read and
        # acknowledged by their group (wall time)
        caught_up = {
            name: wait(
                functools.partial(_group_done, client, name), f"{name} to catch up", every_s=0.5
            )
            for name in extras
        }
        document = gateway_document(port)
        cpu = {name: cpu_seconds(p.pid) for name, p in procs.items() if name != "ingest"}
        spans = block_spans(client)
        snapshots, first_snap_s, last_snap_s = stream_span(client, streams.FEATURES)
        dead = client.xlen(streams.DEAD_LETTER)
        total = end_s - first_bar_s
        services = {
            "ingest": _rate(bars, first_bar_s, last_bar_s, None),
            "features": _rate(snapshots, first_snap_s, last_snap_s, cpu["features"]),
            **{
                e: _rate(spans[e][0], spans[e][1], spans[e][2], cpu[e])
                for e in ("direction", "seller", "buyer")
            },
            "gateway": _rate(
                sum(n for n, _, _ in spans.values()), first_bar_s, end_s, cpu["gateway"]
            ),
        }
        services["features"]["market_blocks"] = spans["market"][0]
        if args.history:  # it writes every block the gateway received
            services["history"] = _rate(
                sum(n for n, _, _ in spans.values()),
                first_bar_s,
                caught_up["history"],
                cpu["history"],
            )
            services["history"]["cpu_s_in_replay"] = extras_cpu_in_replay["history"]
        if args.alerts:  # its rules read every block the gateway received
            services["alerts"] = _rate(
                sum(n for n, _, _ in spans.values()),
                first_bar_s,
                caught_up["alerts"],
                cpu["alerts"],
            )
            services["alerts"]["cpu_s_in_replay"] = extras_cpu_in_replay["alerts"]
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.terminate()
        for p in procs.values():
            p.wait(timeout=30)
    print(
        json.dumps({"seconds": round(total, 2), "services": services, "redis": redis_replay}),
        flush=True,
    )
    alone = seller_alone(client, {**env, "AEGIS_LOG_LEVEL": "ERROR"})
    return {
        "bars": bars,
        "snapshots": snapshots,
        "dead_letters": dead,
        "first_bar_to_last_block_s": round(total, 2),
        "bars_per_s_end_to_end": round(bars / total),
        "document_as_of": {e: (document.get(e) or {}).get("as_of") for e in ENGINES},
        "services": services,
        "redis_during_replay": redis_replay,
        "block_groups_behind_at_end": behind,
        "seller_alone": alone,
    }


def _group_done(client: redis.Redis, group: str) -> float | None:
    """The time at which ``group`` has read and acknowledged every block, else None."""
    groups = {g["name"].decode(): g for g in client.xinfo_groups(streams.BLOCKS)}
    found = groups.get(group)
    done = found is not None and found["pending"] == 0 and found.get("lag") == 0
    return time.time() if done else None


def _gateway_up(port: int) -> bool:
    try:
        gateway_metrics(port)
        return True
    except OSError:
        return False


def _rate(items: int, first_s: float, last_s: float, cpu: float | None) -> dict[str, float | None]:
    span = max(last_s - first_s, 1e-3)
    return {
        "items": items,
        "span_s": round(span, 2),
        "per_s": round(items / span),
        "cpu_s": None if cpu is None else round(cpu, 1),
        "per_cpu_s": None if not cpu else round(items / cpu),
    }


def report(result: dict, args: argparse.Namespace) -> str:
    rows = "\n".join(
        f"| {name} | {r['items']:,} | {r['span_s']} | {r['per_s']:,} | "
        f"{'-' if r['cpu_s'] is None else r['cpu_s']} | "
        f"{'-' if r['per_cpu_s'] is None else format(r['per_cpu_s'], ',')} |"
        for name, r in result["services"].items()
    )
    alone = result["seller_alone"]
    return (
        f"`.venv/bin/python -m bench.bench_replay` on {result['cores']} cores, "
        f"{time.strftime('%Y-%m-%d')}, `/proc/loadavg` at start: "
        f"{result['load_average_at_start']}. "
        f"Daily bars from {args.daily_from}, 1-minute bars {args.intraday_from}..{args.end}, "
        "trained models, AEGIS_REPLAY_SPEED=0, AEGIS_CLOCK=event; ingest, features, direction, "
        "seller, buyer and gateway each in its own process on a real redis-server (AOF "
        "everysec). Time = first bar on aegis:bars → the gateway has received the last "
        "snapshot's block from every engine.\n\n"
        f"**{result['bars']:,} bars → {result['snapshots']:,} snapshots in "
        f"{result['first_bar_to_last_block_s']} s ({result['bars_per_s_end_to_end']:,} bars/s "
        f"end to end)**, {result['dead_letters']} dead letters. Target ≤ 60 s (baseline before "
        "batching: 506 s).\n\n"
        "Per service: items it published (ingest: bars; features: snapshots; engines: blocks; "
        "gateway: blocks received), over the span from its first to its last output, and per "
        "CPU second of its process (its own speed, without waiting for its input).\n\n"
        "| service | items | span s | items/s | CPU s | items per CPU s |\n"
        "|---|---|---|---|---|---|\n"
        f"{rows}\n\n"
        f"One seller replica alone, its group rewound to the first intraday snapshot once it "
        f"was up: {alone['intraday_snapshots']:,} intraday snapshots in {alone['seconds']} s = "
        f"**{alone['snapshots_per_s']:,} snapshots/s** (target ≥ 2,000; before batching "
        "180–250)."
    )


if __name__ == "__main__":
    main()
