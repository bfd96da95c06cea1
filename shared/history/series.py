"""The typed series the history keeps of every block (pure): the values people chart through
the day and across days. Each is one number at the block's ``as_of``, read from one place of
one engine's block; a value the block does not have (no chain, a model warming up) is simply
not a point."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from shared.contract.paths import value_at
from shared.contract.schemas import SignalBlock


@dataclass(frozen=True)
class Series:
    name: str
    engine: str
    path: tuple[str | int, ...]  # inside the block's data; ints index lists
    unit: str
    meaning: str


SERIES: tuple[Series, ...] = (
    Series("spot", "market", ("spot",), "index points", "NIFTY 50 spot (the bar's close)"),
    Series("vix", "market", ("vix",), "index points", "India VIX (the last daily close)"),
    Series("pcr_oi", "seller", ("chain", "pcr", "oi"), "ratio", "put/call open interest"),
    Series("max_pain", "seller", ("chain", "max_pain", "strike"), "strike", "max pain strike"),
    Series(
        "call_wall", "seller", ("chain", "walls", "calls", 0, "strike"), "strike", "top call OI"
    ),
    Series("put_wall", "seller", ("chain", "walls", "puts", 0, "strike"), "strike", "top put OI"),
    Series("atm_iv", "seller", ("chain", "atm_iv", "value"), "fraction", "ATM implied vol"),
    Series(
        "straddle_move",
        "seller",
        ("chain", "straddle", "move_points"),
        "index points",
        "ATM straddle: the move the market prices to expiry",
    ),
    Series("safe_lower", "seller", ("safe_range", "lower"), "index points", "safe range low"),
    Series("safe_upper", "seller", ("safe_range", "upper"), "index points", "safe range high"),
    Series("trap", "seller", ("trap", "score"), "probability", "trap score"),
    Series("stress", "seller", ("expiry_stress", "score"), "probability", "expiry stress"),
    Series("today_up", "direction", ("today", "probabilities", "up"), "probability", "P(up) today"),
    Series(
        "today_down",
        "direction",
        ("today", "probabilities", "down"),
        "probability",
        "P(down) today",
    ),
)
BY_NAME = {s.name: s for s in SERIES}
BY_ENGINE = {e: tuple(s for s in SERIES if s.engine == e) for e in {s.engine for s in SERIES}}


def points(block: SignalBlock) -> Iterator[tuple[str, float]]:
    """(series name, value) of every series this block carries."""
    for series in BY_ENGINE.get(block.engine, ()):
        value = value_at(block.data, series.path)
        if isinstance(value, int | float) and not isinstance(value, bool):
            yield series.name, float(value)
