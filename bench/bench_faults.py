"""Fault campaign: the default replay through the real services while Redis loses data or a
record is poisoned, each scenario against a clean run of the same replay.

Every scenario starts from an empty redis-server (AOF on) and runs the services as their own
processes, as in a deployment: features, three direction replicas, seller, buyer, the gateway,
and ingest replaying the default period (daily warm-up, the 1-minute bars and intraday option
chains of 2026-01-22..02-06) as fast as it goes. Mid-replay (once features has published half
of the clean run's snapshots) the fault is injected; when every group has caught up, the
streams are compared with the clean run's:

- ``flushall``: FLUSHALL under load (ingest notices the run epoch and replays again);
- ``aof-cut``: Redis SIGKILLed and the tail of its AOF cut (appendfsync always; what everysec
  loses on a power cut), restarted (ingest re-publishes the lost tail from its buffer);
- ``poisoned-keys``: a malformed field in a series-state hash (read by ingest and the gateway)
  and in the latest-blocks hash (read by every engine's publish and by the gateway);
- ``poisoned-chains``: chains the validator refuses, and one from years ahead, on the stream.

Reported per scenario: bars and feature snapshots missing against the clean run (0 means
every bar recovered and no minute discarded), dead letters by the service that wrote them,
processes that exited, the gateway's readiness and the services' health at the end. Writes
the "Fault campaign" section of docs/RELIABILITY.md (``--no-write``: print only).

Usage: python -m bench.bench_faults [--model-dir var/models] [--scenarios flushall ...]
       [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import redis

from bench.bench_replay import ROOT, train, wait
from bench.sections import write_section
from shared.bus import replies, streams
from shared.bus.worker import read_health
from shared.contract.codec import decode, encode
from shared.contract.schemas import DeadLetter, OptionChain
from shared.redis_ops.server import RedisServer
from tests.ports import free_port

SERVICES = ("features", "direction", "direction", "direction", "seller", "buyer", "gateway")
SCENARIOS = ("flushall", "aof-cut", "poisoned-keys", "poisoned-chains")
GROUPS = {streams.BARS: ("features",), streams.FEATURES: ("direction", "seller", "buyer")}


class Run:
    """One replay of the default period through the services on a fresh Redis."""

    def __init__(self, tmp: Path, model_dir: Path, appendfsync: str = "everysec") -> None:
        self.server = RedisServer(free_port(), "faults", tmp / "redis", appendfsync=appendfsync)
        self.port = free_port()
        self.env = {
            **os.environ,
            "AEGIS_LOG_LEVEL": "WARNING",
            "AEGIS_EMBEDDED_REDIS": "false",
            "AEGIS_REDIS_URL": self.server.url,
            "AEGIS_MODEL_DIR": str(model_dir),
            "AEGIS_CLOCK": "event",
            "AEGIS_GATEWAY_PORT": str(self.port),
            "AEGIS_OUTPUT_PATH": str(tmp / "aegismatrix.json"),
            "AEGIS_VAR_DIR": str(tmp / "var"),
            "AEGIS_REPLAY_SPEED": "0",
            "AEGIS_HEALTH_TTL_S": "30",
        }
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.logs = tmp / "logs"
        self.logs.mkdir()

    def start(self) -> redis.Redis:
        self.server.start()
        client = self.server.client()
        for i, name in enumerate(SERVICES):
            self._spawn(name, i)
        workers = set(SERVICES) - {"gateway"}
        wait(lambda: {r["service"] for r in read_health(client)} >= workers, "workers up", 300)
        self._spawn("ingest", len(SERVICES))
        return client

    def _spawn(self, name: str, i: int) -> None:
        out = (self.logs / f"{i}-{name}.log").open("wb")
        command = [sys.executable, "-m", f"services.{name}"]
        proc = subprocess.Popen(command, env=self.env, cwd=ROOT, stdout=out, stderr=out)
        self.procs.append((name, proc))

    def exited(self) -> list[str]:
        return [
            f"{name} ({proc.returncode})" for name, proc in self.procs if proc.poll() is not None
        ]

    def stop(self) -> None:
        for _, proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for _, proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.server.stop()


def caught_up(client: redis.Redis, bars: int) -> bool:
    """Ingest's replay ended with ``bars`` bars on the stream, and every group read and
    acknowledged every entry."""
    try:
        if client.xlen(streams.BARS) < bars:
            return False
        reports = read_health(client)
        bars_ingest = [
            r for r in reports if (r["service"], r.get("consumer")) == ("ingest", "file")
        ]
        if not any(r.get("finished") for r in bars_ingest):
            return False
        for stream, groups in GROUPS.items():
            held = {g["name"].decode(): g for g in client.xinfo_groups(stream)}
            for group in groups:
                g = held.get(group)
                if g is None or g["pending"] or g.get("lag") != 0:
                    return False
    except redis.RedisError:  # Redis restarting
        return False
    return True


def snapshot_keys(client: redis.Redis) -> list[tuple[str, int]]:
    """(kind, as_of) of every feature snapshot on the stream, in stream order."""
    out = []
    for _, fields in replies.xrange(client, streams.FEATURES):
        snapshot = decode(fields)
        out.append((getattr(snapshot, "kind", "?"), int(getattr(snapshot, "as_of", 0))))
    return out


def outcome(client: redis.Redis, run: Run, clean: dict | None) -> dict:
    bars = [fields[b"d"] for _, fields in replies.xrange(client, streams.BARS)]
    snapshots = snapshot_keys(client)
    letters = [decode(f) for _, f in replies.xrange(client, streams.DEAD_LETTER)]
    by_writer = Counter(
        f"{d.service}: {d.reason.split(':')[0][:60]}" for d in letters if isinstance(d, DeadLetter)
    )
    try:
        url = f"http://127.0.0.1:{run.port}/readyz"
        ready = json.loads(urllib.request.urlopen(url, timeout=5).read()).get("ready")
    except OSError as exc:  # 503 when not ready
        ready = f"no ({exc})"
    reports = read_health(client)
    health = Counter(r["service"] for r in reports if r["status"] != "ok")
    refused = {r.get("chains_refused") or 0 for r in reports if r["service"] == "seller"}
    quarantined = sorted(  # shared.bus.held's reasons: "N corrupt read(s) of KEY FIELD: why"
        {
            reason.split(" of ", 1)[1].split(": ", 1)[0]
            for r in reports
            for reason in r.get("degraded_reasons") or ()
            if "corrupt read" in reason
        }
    )
    result = {
        "bars": len(bars),
        "snapshots": len(snapshots),
        "dead_letters": dict(by_writer),
        "chains_refused_per_seller": sorted(refused),
        "quarantined_fields": quarantined,
        "exited": run.exited(),
        "gateway_ready": ready,
        "not_ok_at_end": dict(health),
    }
    if clean is not None:
        result["bars_missing"] = len(set(clean["bar_payloads"]) - set(bars))
        result["snapshots_missing"] = len(set(clean["snapshot_keys"]) - set(snapshots))
        result["snapshots_extra"] = len(snapshots) - len(set(snapshots))
    else:
        result["bar_payloads"], result["snapshot_keys"] = bars, snapshots
    return result


def _midway(client: redis.Redis, clean: dict) -> None:
    half = len(clean["snapshot_keys"]) // 2
    wait(lambda: client.xlen(streams.FEATURES) >= half, "half the snapshots", 600, 0.02)


def inject_flushall(run: Run, client: redis.Redis, clean: dict) -> redis.Redis:
    _midway(client, clean)
    client.flushall()
    return client


def inject_aof_cut(run: Run, client: redis.Redis, clean: dict) -> redis.Redis:
    _midway(client, clean)
    aof = sorted(run.server.data_dir.glob("appendonlydir/*.incr.aof"))[-1]
    kept = aof.stat().st_size
    more = client.xlen(streams.FEATURES) + len(clean["snapshot_keys"]) // 10
    wait(lambda: client.xlen(streams.FEATURES) >= more, "a tenth more snapshots", 600, 0.02)
    run.server.kill()
    cut = aof.stat().st_size - kept
    with aof.open("r+b") as f:
        f.truncate(kept)
    run.server.start()
    print(f"  aof-cut: {cut:,} bytes of AOF cut", flush=True)
    return run.server.client()


def inject_poisoned_keys(run: Run, client: redis.Redis, clean: dict) -> redis.Redis:
    _midway(client, clean)
    client.hset(streams.series_state("NIFTY", "1m"), "open_time", "x")
    client.hset(streams.series_state("NIFTY", "5m"), "open_time", "x")
    client.hset(streams.LATEST_BLOCKS + ":as_of", "seller", "x")
    return client


def inject_poisoned_chains(run: Run, client: redis.Redis, clean: dict) -> redis.Redis:
    _midway(client, clean)
    _, fields = replies.xrevrange(client, streams.CHAINS, count=1)[0]
    good = decode(fields)
    assert isinstance(good, OptionChain)
    years = 4 * 365 * 86_400
    bad = [
        good.model_copy(update={"expiry": "x"}),
        good.model_copy(update={"spot": -5.0}),
        good.model_copy(
            update={"snapshot_time": good.snapshot_time + years, "expiry": "2030-02-05"}
        ),
    ]
    for chain in bad:
        replies.xadd(client, streams.CHAINS, encode(chain))  # as a compromised ingest could
    return client


INJECT: dict[str, Callable[[Run, redis.Redis, dict], redis.Redis]] = {
    "flushall": inject_flushall,
    "aof-cut": inject_aof_cut,
    "poisoned-keys": inject_poisoned_keys,
    "poisoned-chains": inject_poisoned_chains,
}


def run_scenario(name: str | None, model_dir: Path, clean: dict | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        run = Run(Path(tmp), model_dir, "always" if name == "aof-cut" else "everysec")
        started = time.monotonic()
        try:
            client = run.start()
            if name is not None and clean is not None:
                client = INJECT[name](run, client, clean)
            bars = len(clean["bar_payloads"]) if clean else 0
            settled: list[int] = []

            def done() -> bool:  # caught up, and no new snapshot for three looks in a row
                settled.append(client.xlen(streams.FEATURES) if caught_up(client, bars) else -1)
                return len(settled) >= 3 and settled[-1] >= 0 and len(set(settled[-3:])) == 1

            wait(done, "every group to catch up", 900, 1.0)
            result = outcome(client, run, clean)
        finally:
            run.stop()
    result["seconds"] = round(time.monotonic() - started, 1)
    return result


def report(results: dict[str, dict], load: str) -> str:
    lines = [
        f"`python -m bench.bench_faults --model-dir var/models`, {time.strftime('%Y-%m-%d')}, "
        f"load average at start {load}. The default replay (every bar and chain of "
        "2026-01-22..02-06 after the daily warm-up), as fast as it goes, through features, "
        "three direction replicas, seller, buyer and the gateway as processes; each fault "
        "injected once features has published half the clean run's snapshots.",
        "",
        "| scenario | bars | snapshots | bars missing | snapshots missing | dead letters | "
        "chains refused (each seller) | fields quarantined | processes exited | gateway ready "
        "| services not ok at the end | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        letters = "; ".join(f"{k} ×{v}" for k, v in r["dead_letters"].items()) or "0"
        not_ok = ", ".join(f"{k} ×{v}" for k, v in r["not_ok_at_end"].items()) or "none"
        lines.append(
            f"| {name} | {r['bars']:,} | {r['snapshots']:,} | {r.get('bars_missing', '—')} | "
            f"{r.get('snapshots_missing', '—')} | {letters} | "
            f"{'/'.join(map(str, r['chains_refused_per_seller'])) or '0'} | "
            f"{', '.join(r['quarantined_fields']) or 'none'} | "
            f"{', '.join(r['exited']) or 'none'} | {r['gateway_ready']} | {not_ok} | "
            f"{r['seconds']} |"
        )
    lines += [
        "",
        "Reading it: *bars missing* and *snapshots missing* 0 mean every bar recovered and no "
        "minute discarded. After a FLUSHALL the batch features had in flight lands in the "
        "emptied Redis and the replay publishes those snapshots again (at most one read "
        "batch, `AEGIS_READ_COUNT`; blocks are idempotent per snapshot), and every worker "
        'reports the loss ("Redis lost its data at …") for 10 minutes by design. A '
        "poisoned field is quarantined for each read of it (`shared/bus/held.py`) and its reader "
        "reports degraded while it stays. A chain from years ahead is held back, not counted "
        "as refused, until a later-arriving older chain refutes it. A failover to a lagging "
        "replica runs with real Sentinels in "
        "`tests/test_redis_failover.py::test_a_failover_to_a_lagging_replica_loses_no_"
        "acknowledged_bar` (0 acknowledged bars lost with `AEGIS_REDIS_WAIT_REPLICAS=1`).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    load = Path("/proc/loadavg").read_text().split(" ")[0]
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model_dir or Path(tmp) / "models"
        if not any(model_dir.glob("*/CURRENT")):
            train(model_dir, {**os.environ, "AEGIS_EMBEDDED_REDIS": "false"})
        print("clean run ...", flush=True)
        clean = run_scenario(None, model_dir, None)
        results = {
            "clean": {k: v for k, v in clean.items() if not k.endswith(("payloads", "keys"))}
        }
        for name in args.scenarios:
            print(f"{name} ...", flush=True)
            results[name] = run_scenario(name, model_dir, clean)
            print(json.dumps(results[name]), flush=True)
    text = report(results, load)
    print(text)
    if not args.no_write:
        write_section("Fault campaign", text, ROOT / "docs" / "RELIABILITY.md")


if __name__ == "__main__":
    main()
