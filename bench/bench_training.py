"""Full retrain of every model on the bundled data (FULL profile, 2 threads), timed.

python -m bench.bench_training [--write]   # --write updates docs/BENCHMARKS.md "Training"
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from bench.sections import write_section
from services.trainer.data import load_bundled
from services.trainer.pipeline import publish_models, train_one
from services.trainer.profiles import FULL
from shared.config import get_settings
from shared.models.loading import MODEL_NAMES

BUDGET_S = 120.0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    settings = get_settings()
    started = time.perf_counter()
    data = load_bundled(settings.data_dir)
    per_model = {"load data + features": time.perf_counter() - started}
    trained = []
    for name in MODEL_NAMES:
        t = time.perf_counter()
        trained.append(train_one(name, data, FULL, settings))
        per_model[name] = time.perf_counter() - t
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        publish_models(trained, data, FULL, Path(tmp), bus=None)
    per_model["publish (write, fsync, rename)"] = time.perf_counter() - t
    total = time.perf_counter() - started
    lines = [
        f"Full retrain of all models (`python -m bench.bench_training`), profile `full`, "
        f"data {data.start}..{data.end}, {os.cpu_count()} CPUs "
        f"({platform.processor() or 'x86_64'}), "
        f"LSTM on 1 torch thread, XGBoost nthread 1; load average at start "
        f"{os.getloadavg()[0]:.1f} (the machine is shared).",
        "",
        "| step | seconds |",
        "|---|---|",
        *[f"| {k} | {v:.1f} |" for k, v in per_model.items()],
        f"| **total** | **{total:.1f}** (budget {BUDGET_S:.0f}) |",
    ]
    print("\n".join(lines))
    if args.write:
        write_section("Training", "\n".join(lines))
    return 0 if total <= BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
