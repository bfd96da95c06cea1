"""An implied-volatility history from a folder of NSE F&O bhavcopies (UDiFF or classic): per
trade day and listed expiry, the ATM IV (``shared.signals.chain.atm_ivs``), the ATM straddle
(``straddle_move``) and the put-call parity forward, read through the chain file loader
(``ChainFileSource``, so the files are parsed exactly as the engine parses them). Records are
plain frozen dataclasses; ``write_iv_history`` / ``read_iv_history`` keep them as a CSV.

Prices are the bhavcopy closing prices at 15:30 IST: a far expiry's ATM strike may not have
traded that day, so its close is stale. ``atm_volume`` (contracts or units as the file gives
them) lets a caller keep traded strikes only.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from datetime import date
from pathlib import Path

import numpy as np

from services.ingest.sources.chain_file import ChainFileSource
from services.ingest.sources.chain_formats import FileContext
from shared.contract.schemas import OptionChain
from shared.market.calendar import ist_date
from shared.market.chain_view import years_to_expiry
from shared.signals.chain import atm_ivs, straddle_move
from shared.signals.chain_arrays import as_arrays
from shared.signals.forward import parity_forward_of

IV_HISTORY_FORMULA = (
    "per trade day and expiry: atm_iv = shared.signals.chain.atm_ivs (the ATM IV of "
    "greeks.ATM_IV_FORMULA, from the closing prices); straddle = ce_close + pe_close at the "
    "strike nearest the forward; forward = forward.FORWARD_FORMULA; years = (expiry 15:30 "
    "IST - trade day 15:30 IST) / 365 days"
)


@dataclass(frozen=True)
class IvPoint:
    day: date  # trade date
    expiry: date
    days_to_expiry: int  # calendar days, 0 on the expiry day
    spot: float  # the bhavcopy's underlying close
    forward: float | None  # put-call parity forward; None without a strike priced both sides
    atm_iv: float | None  # annualised fraction; None on the expiry day or when unpriced
    straddle_strike: float | None
    straddle_points: float | None  # call + put close at the strike nearest the forward
    straddle_pct: float | None  # of spot
    atm_volume: float | None  # call + put volume at that strike as published
    strikes: int  # strikes listed for the expiry
    source: str


def iv_points(chains: Iterable[OptionChain]) -> list[IvPoint]:
    """One point per chain, in (day, expiry) order; one vectorised IV pass for all."""
    chains = sorted(chains, key=lambda c: (c.snapshot_time, c.expiry))
    ivs = atm_ivs([(c.quotes, c.spot, years_to_expiry(c)) for c in chains])
    points = []
    for chain, iv in zip(chains, ivs, strict=True):
        arrays = as_arrays(chain.quotes)
        move = straddle_move(chain.quotes, chain.spot)
        volume = None
        if move is not None:
            i = int(np.searchsorted(arrays.strike, move.strike))
            both = float(np.nansum([arrays.ce_volume[i], arrays.pe_volume[i]]))
            volume = (
                None if np.isnan(arrays.ce_volume[i]) and np.isnan(arrays.pe_volume[i]) else both
            )
        day, expiry = ist_date(chain.snapshot_time), date.fromisoformat(chain.expiry)
        forward = parity_forward_of(arrays, chain.spot)
        points.append(
            IvPoint(
                day=day,
                expiry=expiry,
                days_to_expiry=(expiry - day).days,
                spot=chain.spot,
                forward=None if forward is None else round(forward, 2),
                atm_iv=iv,
                straddle_strike=None if move is None else move.strike,
                straddle_points=None if move is None else move.move_points,
                straddle_pct=None if move is None else round(move.move_pct * 100, 4),
                atm_volume=volume,
                strikes=len(chain.quotes),
                source=chain.source,
            )
        )
    return points


def load_iv_history(
    folder: Path, context: FileContext | None = None
) -> tuple[list[IvPoint], list[str]]:
    """(points, rejections): every bhavcopy of ``folder`` (a single file works too); a file
    the loader cannot read is one rejection reason, the others still count."""
    chains: list[OptionChain] = []
    rejected: list[str] = []
    for event in ChainFileSource(Path(folder), context=context).events():
        if isinstance(event, OptionChain):
            chains.append(event)
        else:
            rejected.append(getattr(event, "reason", str(event)))
    return iv_points(chains), rejected


COLUMNS = tuple(f.name for f in fields(IvPoint))


def write_iv_history(points: Iterable[IvPoint], path: Path) -> None:
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for point in points:
            row = asdict(point)
            writer.writerow({k: "" if v is None else v for k, v in row.items()})


def _optional(text: str) -> float | None:
    if not text.strip():
        return None
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not finite")
    return value


def read_iv_history(path: Path) -> list[IvPoint]:
    """The CSV ``write_iv_history`` wrote; a ValueError names the line of a bad row."""
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(f"{Path(path).name}: lacks columns {missing}")
        points = []
        for row in reader:
            try:
                points.append(
                    IvPoint(
                        day=date.fromisoformat(row["day"]),
                        expiry=date.fromisoformat(row["expiry"]),
                        days_to_expiry=int(row["days_to_expiry"]),
                        spot=float(row["spot"]),
                        forward=_optional(row["forward"]),
                        atm_iv=_optional(row["atm_iv"]),
                        straddle_strike=_optional(row["straddle_strike"]),
                        straddle_points=_optional(row["straddle_points"]),
                        straddle_pct=_optional(row["straddle_pct"]),
                        atm_volume=_optional(row["atm_volume"]),
                        strikes=int(row["strikes"]),
                        source=row["source"],
                    )
                )
            except ValueError as exc:
                raise ValueError(f"{Path(path).name} line {reader.line_num}: {exc}") from exc
    return points
