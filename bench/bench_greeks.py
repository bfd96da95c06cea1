"""Greeks benchmark: per-strike IV and Black-76 Greeks of a 3-expiry, 450-quote chain.

The chain is NSE's UDiFF F&O bhavcopy of 2026-01-22 (tests/fixtures/nse), its three nearest
expiries (2026-01-27, 02-03, 02-10: 94-95 real strikes each), padded to 150 strikes per
expiry at 50-point steps beyond the listed ones (450 quotes, 900 option legs). The padding is
priced, not empty: Black-76 at the outermost real strike's IV, rounded to the 0.05 tick, so
every leg takes the solver (the worst case; unpriced strikes would be skipped).
Timed: ``chains_greeks`` over the three chains (one vectorised IV solve + Greeks pass,
out-of-the-money IV per strike, and separately ``iv_from="own"``: both sides solved).
"new snapshot" gives every sample new quotes (a new table, as a chain decoded from the bus
has), so the analytic columns are rebuilt as when a chain arrives; "arrays cached" times the
IV solve and Greeks alone. The target (issue "The chain's depth") is <= 2 ms.
Usage: python -m bench.bench_greeks [--samples 2000]
"""

from __future__ import annotations

import argparse
import gc
import time
from pathlib import Path

import numpy as np

from services.ingest.sources.chain_file import ChainFileSource
from shared.contract.schemas import OptionChain, OptionQuote, Quotes
from shared.market.chain_view import years_to_expiry
from shared.signals.chain import chain_smile
from shared.signals.chain_arrays import as_arrays
from shared.signals.greeks import IvFrom, chains_greeks
from shared.signals.skew import black76_price

ROOT = Path(__file__).resolve().parent.parent
BHAVCOPY = ROOT / "tests" / "fixtures" / "nse" / "nifty_fo_udiff_2026-01-22.csv.gz"
EXPIRIES, STRIKES = 3, 150
CALL_PUT = np.array([True, False])


def priced(k: float, chain: OptionChain, iv: float, years: float) -> OptionQuote:
    def tick(price: float) -> float:
        return max(0.05, round(round(price / 0.05) * 0.05, 2))

    forward = chain.spot  # padding far from the money: the basis does not matter
    call, put = black76_price(forward, np.array([k, k]), years, np.array([iv, iv]), CALL_PUT)
    return OptionQuote(
        strike=k, ce_ltp=tick(float(call)), pe_ltp=tick(float(put)), ce_oi=65e3, pe_oi=65e3
    )


def chains() -> list[OptionChain]:
    loaded = [e for e in ChainFileSource(BHAVCOPY).events() if isinstance(e, OptionChain)]
    out = []
    for chain in sorted(loaded, key=lambda c: c.expiry)[:EXPIRIES]:
        years = years_to_expiry(chain)
        smile = chain_smile(chain.quotes, chain.spot, years)
        assert smile is not None and smile.points
        quotes = list(chain.quotes)
        low, high = quotes[0].strike, quotes[-1].strike
        while len(quotes) < STRIKES:
            high += 50
            quotes.append(priced(high, chain, smile.points[-1].iv, years))
            if len(quotes) < STRIKES:
                low -= 50
                quotes.insert(0, priced(low, chain, smile.points[0].iv, years))
        out.append(chain.model_copy(update={"quotes": tuple(quotes)}))
    return out


def timed(
    batch: list[OptionChain], samples: int, iv_from: IvFrom, new_snapshot: bool
) -> np.ndarray:
    years = [years_to_expiry(c) for c in batch]
    out = np.empty(samples)
    for i in range(samples):
        if new_snapshot:
            # a new snapshot's quotes (a new table, as decoded): the cache misses
            quotes = [Quotes(c.quotes.table.copy()) for c in batch]
        else:
            quotes = [c.quotes for c in batch]
            for q in quotes:
                as_arrays(q).memo.clear()  # keep the columns, drop the remembered results
        args = [(q, c.spot, y) for q, c, y in zip(quotes, batch, years, strict=True)]
        start = time.perf_counter()
        chains_greeks(args, iv_from)
        out[i] = time.perf_counter() - start
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    args = parser.parse_args()
    batch = chains()
    quotes = sum(len(c.quotes) for c in batch)
    print(
        f"{len(batch)} expiries {[c.expiry for c in batch]}, {quotes} quotes, "
        f"{sum(q.ce_ltp is not None for c in batch for q in c.quotes)} calls and "
        f"{sum(q.pe_ltp is not None for c in batch for q in c.quotes)} puts priced, "
        f"spot {batch[0].spot}"
    )
    gc.disable()
    try:
        for iv_from in ("otm", "own"):
            for new_snapshot in (True, False):
                timed(batch, 50, iv_from, new_snapshot)  # warm-up
                ms = timed(batch, args.samples, iv_from, new_snapshot) * 1e3
                what = "new snapshot " if new_snapshot else "arrays cached"
                print(
                    f"iv_from={iv_from} {what}: median {np.median(ms):.3f} ms, "
                    f"p99 {np.percentile(ms, 99):.3f} ms, max {ms.max():.3f} ms "
                    f"({args.samples} samples)"
                )
    finally:
        gc.enable()


if __name__ == "__main__":
    main()
