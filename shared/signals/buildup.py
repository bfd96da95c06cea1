"""OI build-up: what the change in price and open interest together say traders did, per
strike and side of a chain (between two snapshots, or since the previous close) and for the
near-month future."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import Literal

import numpy as np

from shared.contract.schemas import OptionQuote
from shared.signals.chain_arrays import as_arrays
from shared.signals.rounding import optional_floats

BUILDUP_FORMULA = (
    "price up & OI up = long build-up; price down & OI up = short build-up; price up & OI down "
    "= short covering; price down & OI down = long unwinding; price or OI unchanged (|change| "
    "<= the threshold, 0 by default) = neutral. Options: price = LTP, OI in units; between two "
    "snapshots both changes are now - before; since the close the OI change is the exchange's "
    "published change and the price change is LTP - previous close"
)


class Buildup(StrEnum):
    LONG_BUILDUP = "long_buildup"
    SHORT_BUILDUP = "short_buildup"
    SHORT_COVERING = "short_covering"
    LONG_UNWINDING = "long_unwinding"
    NEUTRAL = "neutral"


# [sign(price change) + 1][sign(OI change) + 1]
_TABLE = (
    (Buildup.LONG_UNWINDING, Buildup.NEUTRAL, Buildup.SHORT_BUILDUP),
    (Buildup.NEUTRAL, Buildup.NEUTRAL, Buildup.NEUTRAL),
    (Buildup.SHORT_COVERING, Buildup.NEUTRAL, Buildup.LONG_BUILDUP),
)


def _sign(change: float, threshold: float) -> int:
    return 0 if abs(change) <= threshold else (1 if change > 0 else -1)


def classify_buildup(
    price_change: float,
    oi_change: float,
    min_price_change: float = 0.0,
    min_oi_change: float = 0.0,
) -> Buildup:
    """``BUILDUP_FORMULA`` for one instrument's price and OI changes."""
    return _TABLE[_sign(price_change, min_price_change) + 1][_sign(oi_change, min_oi_change) + 1]


def future_buildup(
    price: float,
    previous_price: float,
    oi: float,
    previous_oi: float,
    min_price_change: float = 0.0,
    min_oi_change: float = 0.0,
) -> Buildup:
    """``BUILDUP_FORMULA`` for the near-month future (price now vs before, OI now vs before)."""
    return classify_buildup(
        price - previous_price, oi - previous_oi, min_price_change, min_oi_change
    )


_LABELS = np.array([label for row in _TABLE for label in row] + [None], dtype=object)
_UNKNOWN = len(_LABELS) - 1  # the None at the end
_LABEL_TEXT = np.array([None if label is None else str(label) for label in _LABELS], dtype=object)


@dataclass(frozen=True, eq=False)
class SideBuildup:
    """One side of a chain per strike (``ChainBuildup.strikes`` order), as columns: a strike
    whose price or OI change is not known has no build-up, and a reason. The per-strike
    tuples (None where not known) are built on first use."""

    codes: np.ndarray  # index into the label table, ``_UNKNOWN`` where not labelled
    price_change: np.ndarray  # points, NaN where not known
    oi_change: np.ndarray  # units, NaN where not known
    why_no_price: str
    why_no_oi: str

    @cached_property
    def buildup(self) -> tuple[Buildup | None, ...]:
        return tuple(_LABELS[self.codes].tolist())

    price_change_points = optional_floats("price_change")
    oi_change_units = optional_floats("oi_change")

    @cached_property
    def reason(self) -> tuple[str | None, ...]:
        reasons = np.full(self.codes.size, self.why_no_price, dtype=object)
        reasons[np.isfinite(self.price_change)] = self.why_no_oi
        reasons[self.codes != _UNKNOWN] = None
        return tuple(reasons.tolist())

    def labels(self, rows: np.ndarray | None = None) -> list[str | None]:
        """The build-up of strikes ``rows`` (all by default) as text (None: not labelled)."""
        return list(_LABEL_TEXT[self.codes if rows is None else self.codes[rows]].tolist())


@dataclass(frozen=True)
class ChainBuildup:
    strikes: tuple[float, ...]  # ascending: the strikes of the current chain
    basis: Literal["snapshots", "previous_close"]
    call: SideBuildup
    put: SideBuildup


def _side(
    name: str,
    price_change: np.ndarray,
    oi_change: np.ndarray,
    why_price: str,
    why_oi: str,
    min_price_change: float,
    min_oi_change: float,
) -> SideBuildup:
    """Every strike of one side at once: the table looked up by both signs (numpy)."""
    known_p, known_oi = np.isfinite(price_change), np.isfinite(oi_change)
    known = known_p & known_oi  # an unknown change's 0 below is never shown or labelled
    dp, doi = np.where(known_p, price_change, 0.0), np.where(known_oi, oi_change, 0.0)
    sp = np.where(np.abs(dp) <= min_price_change, 0, np.sign(dp)).astype(int)
    so = np.where(np.abs(doi) <= min_oi_change, 0, np.sign(doi)).astype(int)
    return SideBuildup(
        codes=np.where(known, (sp + 1) * 3 + so + 1, _UNKNOWN),
        price_change=np.where(known_p, price_change, np.nan),
        oi_change=np.where(known_oi, oi_change, np.nan),
        why_no_price=f"{name}: {why_price}",
        why_no_oi=f"{name}: {why_oi}",
    )


def buildup_between(
    now: Sequence[OptionQuote],
    before: Sequence[OptionQuote],
    min_price_change: float = 0.0,
    min_oi_change: float = 0.0,
) -> ChainBuildup:
    """``BUILDUP_FORMULA`` per strike and side from ``before`` to ``now`` (two snapshots of
    one expiry). A strike missing from ``before``, or unpriced in either, has no build-up."""
    a, b = as_arrays(now), as_arrays(before)
    # each strike's row in ``before`` (ascending; of equal strikes the last), if it has one
    last = np.searchsorted(b.strike, a.strike, side="right") - 1
    pick = np.maximum(last, 0)
    found = (last >= 0) & (b.strike[pick] == a.strike) if b.strike.size else last >= 0

    def earlier(column: np.ndarray) -> np.ndarray:
        return np.where(found, column[pick] if column.size else np.nan, np.nan)

    sides = []
    for name in ("call", "put"):
        prefix = "ce" if name == "call" else "pe"
        ltp_now, ltp_before = getattr(a, f"{prefix}_ltp"), earlier(getattr(b, f"{prefix}_ltp"))
        oi_change = getattr(a, f"{prefix}_oi") - earlier(getattr(b, f"{prefix}_oi"))
        sides.append(
            _side(
                name,
                ltp_now - ltp_before,
                oi_change,
                "no LTP in one of the two snapshots (or strike not in the earlier one)",
                "strike not in the earlier snapshot",
                min_price_change,
                min_oi_change,
            )
        )
    return ChainBuildup(tuple(a.strike.tolist()), "snapshots", sides[0], sides[1])


def buildup_since_close(
    quotes: Sequence[OptionQuote],
    call_previous_close: Mapping[float, float],
    put_previous_close: Mapping[float, float],
    min_price_change: float = 0.0,
    min_oi_change: float = 0.0,
) -> ChainBuildup:
    """``BUILDUP_FORMULA`` per strike and side since the previous session's close: the
    published change in OI (``ce_oi_change``/``pe_oi_change``) and LTP minus the previous
    close price of that strike and side (``{strike: price}``)."""
    a = as_arrays(quotes)
    strikes = a.strike.tolist()
    sides = []
    for name, closes in (("call", call_previous_close), ("put", put_previous_close)):
        prefix = "ce" if name == "call" else "pe"
        close = np.array([closes.get(k, np.nan) for k in strikes], dtype=float)
        close[close <= 0] = np.nan
        sides.append(
            _side(
                name,
                getattr(a, f"{prefix}_ltp") - close,
                getattr(a, f"{prefix}_oi_change"),
                "no LTP or no previous close",
                "no published change in OI",
                min_price_change,
                min_oi_change,
            )
        )
    return ChainBuildup(tuple(strikes), "previous_close", sides[0], sides[1])
