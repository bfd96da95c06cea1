"""The live scorecard (pure): the safe range that was live at each session's close, scored at
its expiry's close, beside a VIX lognormal band at the same coverage target, from what the
history stored. A replay stores the same blocks, so it scores the same.

An expiry is scored once a later session is stored (its close is then final); a forecast
made on its own expiry day is not scored (its "expiry close" is that same close)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from shared.models.api import vix_regime
from shared.schemas import SignalBlock

VIX_BAND_FORMULA = (
    "spot x exp(-/+ z x VIX/100 x sqrt(max(days to expiry, 1)/365)), z = the normal quantile "
    "of (1 + coverage target)/2: the VIX lognormal band at the range's own target"
)


@dataclass(frozen=True)
class ClosingRange:
    session: str  # IST date of the close the range was live at
    expiry: str
    lower: float
    upper: float
    coverage_target: float
    spot: float
    vix: float | None
    days_to_expiry: int
    source: str  # the range's provenance source: model, formula, heuristic


@dataclass(frozen=True)
class Scored:
    forecast: ClosingRange
    expiry_close: float
    inside: bool
    inside_vix_band: bool | None


def closing_range(seller: SignalBlock, market: SignalBlock | None) -> ClosingRange | None:
    """The seller block's safe range with the spot and VIX it was made at; None without one."""
    r = seller.data.get("safe_range") or {}
    if not all(isinstance(r.get(k), int | float) for k in ("lower", "upper", "coverage_target")):
        return None
    m = market.data if market is not None else {}
    spot = m.get("spot") if isinstance(m.get("spot"), int | float) else None
    return ClosingRange(
        session=seller.session_date,
        expiry=str(r.get("expiry")),
        lower=float(r["lower"]),
        upper=float(r["upper"]),
        coverage_target=float(r["coverage_target"]),
        spot=float(spot) if spot is not None else (float(r["lower"]) + float(r["upper"])) / 2,
        vix=float(m["vix"]) if isinstance(m.get("vix"), int | float) else None,
        days_to_expiry=int(r.get("days_to_expiry") or 0),
        source=str((r.get("provenance") or {}).get("source", "?")),
    )


def vix_band(f: ClosingRange) -> tuple[float, float] | None:
    if f.vix is None or f.vix <= 0:
        return None
    z = NormalDist().inv_cdf((1 + f.coverage_target) / 2)
    scale = f.vix / 100 * math.sqrt(max(f.days_to_expiry, 1) / 365)
    return f.spot * math.exp(-z * scale), f.spot * math.exp(z * scale)


def score(forecasts: Iterable[ClosingRange], closes: Mapping[str, float]) -> list[Scored]:
    """Every forecast whose expiry has a final close (a later session stored)."""
    latest = max(closes, default="")
    out = []
    for f in forecasts:
        if f.expiry <= f.session or f.expiry >= latest or f.expiry not in closes:
            continue
        close = closes[f.expiry]
        band = vix_band(f)
        out.append(
            Scored(
                forecast=f,
                expiry_close=close,
                inside=f.lower <= close <= f.upper,
                inside_vix_band=None if band is None else band[0] <= close <= band[1],
            )
        )
    return out


def _rates(rows: list[Scored]) -> dict[str, Any]:
    banded = [r for r in rows if r.inside_vix_band is not None]
    return {
        "scored": len(rows),
        "inside": sum(r.inside for r in rows),
        "hit_rate": round(sum(r.inside for r in rows) / len(rows), 4) if rows else None,
        "vix_band_inside": sum(bool(r.inside_vix_band) for r in banded),
        "vix_band_scored": len(banded),
        "expiries": len({r.forecast.expiry for r in rows}),
    }


def summarise(rows: list[Scored], last: int = 20) -> dict[str, Any]:
    """Hit rates overall, over the last ``last`` scored closes, and by VIX regime."""
    regimes: dict[str, list[Scored]] = {}
    for r in rows:
        regimes.setdefault(vix_regime(r.forecast.vix), []).append(r)
    targets = sorted({r.forecast.coverage_target for r in rows})
    return {
        "coverage_target": targets[0] if len(targets) == 1 else targets,
        "all": _rates(rows),
        "last": {"closes": last, **_rates(rows[-last:])},
        "by_regime": {k: _rates(v) for k, v in sorted(regimes.items())},
        "window": f"{rows[0].forecast.session}..{rows[-1].forecast.session}" if rows else None,
    }
