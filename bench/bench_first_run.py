"""A newcomer's first `make run`, timed: `python -m services.stack` on the default replay
with an empty var dir, until the dashboard's document is fresh, out of sample and paced.

    .venv/bin/python -m bench.bench_first_run [--models DIR]

Prints seconds to: models ready (training, from the stack's own log line), the REPLAY clock
paced, every engine's block fresh on it, and the seller's option-chain group fresh.
``--models`` reuses a registry (a second run); without it the models are trained into the
temporary var dir, as on a fresh clone.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from tests.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
ENGINES = ("market", "direction", "seller", "buyer")


def document(port: int) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/document", timeout=5) as r:
            return json.loads(r.read())
    except (OSError, ValueError):
        return None


def fresh_and_paced(doc: dict | None) -> bool:
    clock = (doc or {}).get("clock") or {}
    sections = [(doc or {}).get(e) or {} for e in ENGINES]
    return clock.get("rate", 0) > 0 and all(
        s.get("kind") == "intraday" and s.get("stale") is False for s in sections
    )


def chain_fresh(doc: dict | None) -> bool:
    chain = ((doc or {}).get("seller") or {}).get("chain") or {}
    return chain.get("status") == "fresh" and chain.get("gamma_exposure") is not None


def in_sample(node: object) -> bool:
    if isinstance(node, dict):
        return node.get("in_sample") is True or any(in_sample(v) for v in node.values())
    if isinstance(node, list):
        return any(in_sample(v) for v in node)
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, help="model registry to reuse")
    parser.add_argument("--timeout", type=float, default=1200)
    args = parser.parse_args()
    var = Path(tempfile.mkdtemp(prefix="aegis-first-run-"))
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AEGIS_")},
        "AEGIS_VAR_DIR": str(var),
        "AEGIS_OUTPUT_PATH": str(var / "aegismatrix.json"),
        "AEGIS_MODEL_DIR": str(args.models or var / "models"),
        "AEGIS_REDIS_PORT": str(free_port()),
        "AEGIS_GATEWAY_PORT": str(port),
        "AEGIS_LOG_JSON": "true",
    }
    log_path = var / "stack.log"
    started = time.monotonic()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.stack"],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        marks: dict[str, float] = {}
        try:
            while time.monotonic() - started < args.timeout and proc.poll() is None:
                if "models" not in marks and '"models_ready"' in log_path.read_text():
                    marks["models"] = time.monotonic() - started
                doc = document(port)
                clock = (doc or {}).get("clock") or {}
                if "paced" not in marks and clock.get("rate", 0) > 0:
                    marks["paced"] = time.monotonic() - started
                if "fresh" not in marks and fresh_and_paced(doc):
                    marks["fresh"] = time.monotonic() - started
                    marks["in_sample"] = float(in_sample(doc))
                if chain_fresh(doc):
                    marks["chain"] = time.monotonic() - started
                    marks["in_sample"] = max(marks.get("in_sample", 0.0), float(in_sample(doc)))
                    if "fresh" in marks:
                        break
                time.sleep(0.5)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
    print(
        f"models ready {marks.get('models', float('nan')):.1f} s · replay paced "
        f"{marks.get('paced', float('nan')):.1f} s · every block fresh "
        f"{marks.get('fresh', float('nan')):.1f} s · option chain fresh "
        f"{marks.get('chain', float('nan')):.1f} s · in-sample output: "
        f"{'yes' if marks.get('in_sample') else 'no'} (log: {log_path})"
    )


if __name__ == "__main__":
    main()
