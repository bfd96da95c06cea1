"""Build a data folder for replaying bars beside the bundled option chain (2026-01/02).

The bundled daily bars end 2025-06-30; the chain file covers 2026-01-22 -> 2026-02-05.
data/nifty50_daily_2025-07_2026-02.csv and data/india_vix_daily_2025-07_2026-02.csv carry
the same sources' rows for 2025-07-01 -> 2026-02-06 (data/SOURCES.md §6). This script writes
OUT/ with the bundled daily files extended by them, and links the other data files, so
``AEGIS_DATA_DIR=OUT`` replays them (README "Replay bars with the option chain").
Usage: python scripts/chain_replay_data.py [OUT]   (default var/chain-replay-data)
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
EXTENSIONS = {
    "nifty50_daily.csv": "nifty50_daily_2025-07_2026-02.csv",
    "india_vix_daily.csv": "india_vix_daily_2025-07_2026-02.csv",
}


def build(out: Path, data: Path = DATA) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for name, extension in EXTENSIONS.items():
        base = (data / name).read_text().rstrip("\n").split("\n")
        extra = (data / extension).read_text().rstrip("\n").split("\n")
        if base[0] != extra[0]:
            raise SystemExit(f"{extension}: header {extra[0]!r} differs from {name}")
        last = base[-1].split(",")[0]
        rows = [r for r in extra[1:] if r.split(",")[0] > last]
        (out / name).write_text("\n".join(base + rows) + "\n")
    for path in data.iterdir():
        target = out / path.name
        if path.name not in EXTENSIONS and not target.exists():
            target.symlink_to(path.resolve())
    return out


if __name__ == "__main__":
    print(build(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "var" / "chain-replay-data"))
