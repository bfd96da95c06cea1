"""Which data a ``var/`` folder was filled from, so that one run never mixes two.

The first run in a ``var/`` writes its dataset (the source and, for a replay, the files and
the period) to ``var/dataset.json``; a later run with another dataset stops before it
starts anything, with one line saying what to do. Without this, a replay of 2021 into a
``var/`` holding the 2026 fortnight has every bar refused as out of order (dead letters)
while the dashboard shows the old, stale blocks. Only what decides the data counts: the
replay's speed or pacing start may change between runs."""

from __future__ import annotations

import json
from pathlib import Path

from shared.config import Settings

FILE_NAME = "dataset.json"


class DatasetConflict(SystemExit):
    """The run's dataset is not the one ``var/`` holds (a one-line message)."""


def dataset_of(settings: Settings) -> dict[str, str | None]:
    """The run's dataset: the source, and what it replays."""

    def name(path: Path | None) -> str | None:
        return path.name if path else None

    if settings.source == "yfinance":
        return {"source": "yfinance (live)"}
    if settings.source == "stream":
        return {"source": "stream", "recording": name(settings.replay_file)}
    return {
        "source": "file",
        "data": str(settings.data_dir),
        "daily_from": settings.replay_daily_from,
        "intraday_from": settings.replay_intraday_from,
        "end": settings.replay_end,
        "chain_file": name(settings.chain_file),
        "participant_oi_file": name(settings.participant_oi_file),
        "futures_file": name(settings.futures_file),
    }


def describe(dataset: dict[str, str | None]) -> str:
    return ", ".join(f"{k} {v}" for k, v in dataset.items() if v is not None)


def claim(settings: Settings) -> None:
    """Record this run's dataset in ``var/``, or raise ``DatasetConflict`` when ``var/``
    holds another one."""
    path = settings.var_dir / FILE_NAME
    wanted = dataset_of(settings)
    if path.exists():
        held = json.loads(path.read_text())
        if held != wanted:
            raise DatasetConflict(
                f"{settings.var_dir} holds another dataset ({describe(held)}); this run "
                f"wants {describe(wanted)}. Run `make clean` to start over, or give this run "
                f"its own folder: AEGIS_VAR_DIR=var-other (the model registry, "
                f"{settings.model_dir}, is shared: it keeps a version per training window)"
            )
        return
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(wanted, indent=2) + "\n")
