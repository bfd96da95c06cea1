"""Where a seller block's time goes when every expiry's chain is new, in process, by part.

The samples are bench_chain's (three new chains of 150 strikes + one feature snapshot, the
411 real snapshots of the bundled file as history), without Redis: each part is what the
seller does for it. decode: the three chains' stream entries -> ``OptionChain``s;
validation: ``chain_problems`` of each; ATM IVs: ``ChainViews`` syncing the three new
snapshots (one vectorised IV solve, their smiles); view: the rest of ``ChainViews.view``;
compute: ``compute_seller`` (the chain group and its depth, every other group); stamp:
``build_block`` (provenance walk, pack, digest) + ``encode``. Median ms per sample over
``--samples`` after 10 warm-up samples; the box's load changes them, compare in one run.

Usage: python -m bench.profile_chain [--samples 300]
"""

from __future__ import annotations

import argparse
import time
from typing import cast

import numpy as np

from bench.bench_chain import WARMUP, real_chains, samples_of
from services.seller.compute import compute_seller
from shared.bus.engine import ChainCache
from shared.config import Settings
from shared.contract.blocks import build_block, pack_data, provenance_summary
from shared.contract.codec import decode, encode
from shared.contract.schemas import OptionChain
from shared.logs import configure_logging
from shared.market.chain_validation import chain_problems
from shared.market.chain_view import ChainViews
from shared.market.clock import make_clock
from shared.models.context import EngineContext, ModelBook

PARTS = ("decode", "validation", "ATM IVs", "view", "compute", "stamp")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    configure_logging("WARNING", json=True)
    history = real_chains()
    cache = ChainCache(None)  # type: ignore[arg-type]  # filled directly, no Redis
    for chain in history:
        cache.add(chain)
    settings = Settings()
    views = ChainViews(cache, settings.chain_max_age_s)
    clock = make_clock("event")
    samples = samples_of(history, args.samples + WARMUP)
    entries = [[encode(c) for c in chains] for chains, _ in samples]
    views.view(samples[0][1])  # the ATM IV of every kept snapshot, once
    times: dict[str, list[float]] = {part: [] for part in PARTS}
    for i, ((_, snapshot), fields) in enumerate(zip(samples, entries, strict=True)):
        marks = [time.perf_counter()]
        chains = [cast(OptionChain, decode(f)) for f in fields]
        marks.append(time.perf_counter())
        problems = [chain_problems(chain) for chain in chains]
        marks.append(time.perf_counter())
        assert not any(problems), problems
        for chain in chains:
            cache.add(chain)
        views._sync()  # the new snapshots' ATM IVs, as the view below would
        marks.append(time.perf_counter())
        view = views.view(snapshot)
        marks.append(time.perf_counter())
        ctx = EngineContext(settings, snapshot, ModelBook(), None, {})
        data = compute_seller(ctx, view)
        marks.append(time.perf_counter())
        packed = pack_data(data)  # as the engine stamps a block
        _, degraded = provenance_summary(data)
        block = build_block(
            "seller", snapshot, data, packed, clock=clock, settings=settings, degraded=degraded
        )
        encode(block)
        marks.append(time.perf_counter())
        if i >= WARMUP:
            for part, start, end in zip(PARTS, marks, marks[1:], strict=False):
                times[part].append((end - start) * 1000)
    medians = {part: float(np.median(v)) for part, v in times.items()}
    print(
        " | ".join(f"{part} {ms:.3f}" for part, ms in medians.items()),
        f"| total {sum(medians.values()):.3f} ms (median per sample, {args.samples} samples)",
    )


if __name__ == "__main__":
    main()
