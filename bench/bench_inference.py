"""Latency of the whole direction ensemble (BiLSTM + 6 boosters + calibration) on one
snapshot, through the public ``predict`` the engines call.

    python -m bench.bench_inference [--model-dir DIR] [--write]
Without a registry holding ``direction``, trains the full-profile model first (not timed).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.sections import write_section
from services.trainer.data import load_bundled
from services.trainer.pipeline import run_training
from shared.config import Settings, get_settings
from shared.models import registry
from shared.models.direction import DirectionEnsemble
from shared.models.loading import load_model

BUDGET_P99_MS = 5.0
CALLS = 3000


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", type=Path, default=get_settings().model_dir)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    settings = get_settings()
    model_dir = args.model_dir
    if registry.current_version(model_dir, "direction") is None:
        model_dir = Path(tempfile.mkdtemp(prefix="aegis-bench-"))
        run_training(
            Settings(model_dir=model_dir, redis_url="redis://127.0.0.1:1/0"), names=["direction"]
        )
    model = load_model(model_dir, "direction")
    assert isinstance(model, DirectionEnsemble)
    data = load_bundled(settings.data_dir)
    rows = np.arange(len(data.frame) - 500, len(data.frame))
    snapshots = [
        (
            {k: (None if v != v else float(v)) for k, v in data.features.iloc[r].items()},
            data.sequences[r],
        )
        for r in rows
    ]
    for daily, seq in snapshots[:50]:
        model.predict(daily, seq)
    timings = np.empty(CALLS)
    for i in range(CALLS):
        daily, seq = snapshots[i % len(snapshots)]
        t = time.perf_counter()
        model.predict(daily, seq)
        timings[i] = (time.perf_counter() - t) * 1000
    p50, p99, worst = np.percentile(timings, 50), np.percentile(timings, 99), timings.max()
    lines = [
        f"`direction` ensemble `predict(daily, sequence)` on one snapshot "
        f"(`python -m bench.bench_inference`): BiLSTM (hidden {model.net.config.hidden}) + "
        f"{len(model.boosters)} XGBoost boosters + temperature + climatology shrink; "
        f"{CALLS} calls over 500 real snapshots, torch intra-op threads 1, "
        f"model {model.ref.version}.",
        "",
        "| p50 ms | p99 ms | max ms | budget p99 ms |",
        "|---|---|---|---|",
        f"| {p50:.2f} | {p99:.2f} | {worst:.2f} | {BUDGET_P99_MS:.0f} |",
    ]
    print("\n".join(lines))
    if args.write:
        write_section("Inference", "\n".join(lines))
    return 0 if p99 <= BUDGET_P99_MS else 1


if __name__ == "__main__":
    sys.exit(main())
