"""The live scorecard (pure): the safe range and the breach probabilities that were live at
each session's close, scored at their expiry's close, beside the VIX lognormal band at the
same coverage target and the VIX lognormal breach curve, from what the history stored. A
replay stores the same blocks, so it scores the same.

An expiry is scored once a later session is stored (its close is then final); a forecast
made on its own expiry day is not scored (its "expiry close" is that same close)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import pandas as pd

from shared.contract.paths import number
from shared.contract.schemas import SignalBlock
from shared.models.api import vix_regime
from shared.signals.breach import lognormal_breach_probability
from shared.signals.safe_range import safe_range, symmetric_normal_z

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
    spot: float | None  # the market block's, at the same close
    vix: float | None
    days_to_expiry: int
    source: str  # the range's provenance source: model, formula, heuristic
    breach: tuple[tuple[float, str, float], ...] = ()  # (strike, "above"|"below", probability)
    trap: float | None = None  # P(RV of the next 5 sessions > VIX/100), as published
    stress: float | None = None  # the expiry-stress score, as published
    # the straddle's lognormal band at the same target, when the close's chain was of the
    # range's own expiry
    straddle_band: tuple[float, float] | None = None


@dataclass(frozen=True)
class Scored:
    forecast: ClosingRange
    expiry_close: float
    inside: bool
    inside_vix_band: bool | None
    inside_straddle_band: bool | None
    # per breach strike: (the published probability, the VIX lognormal's, breached 0/1)
    breach: tuple[tuple[float, float | None, int], ...] = ()


def in_sample(group: object) -> bool:
    """The group's value came from a model trained on its own date: not a forecast."""
    return isinstance(group, dict) and (group.get("provenance") or {}).get("in_sample") is True


def closing_range(seller: SignalBlock, market: SignalBlock | None) -> ClosingRange | None:
    """The seller block's safe range with the spot and VIX it was made at (its own fields;
    the same session's market block for blocks stored before it carried them); None without
    a range, or when any of its groups is in sample (the model saw that date)."""
    r = seller.data.get("safe_range") or {}
    if not all(isinstance(r.get(k), int | float) for k in ("lower", "upper", "coverage_target")):
        return None
    if any(in_sample(group) for group in seller.data.values()):
        return None
    m = market.data if market is not None else {}
    spot = number(r.get("spot")) or number(m.get("spot"))
    vix = number(r.get("vix")) or number(m.get("vix"))
    return ClosingRange(
        session=seller.session_date,
        expiry=str(r.get("expiry")),
        lower=float(r["lower"]),
        upper=float(r["upper"]),
        coverage_target=float(r["coverage_target"]),
        spot=spot,
        vix=vix,
        days_to_expiry=int(r.get("days_to_expiry") or 0),
        source=str((r.get("provenance") or {}).get("source", "?")),
        breach=tuple(
            (float(b["strike"]), str(b["side"]), float(b["probability"]))
            for b in (seller.data.get("breach_probabilities") or {}).get("points") or []
            if isinstance(b.get("strike"), int | float)
            and isinstance(b.get("probability"), int | float)
        ),
        trap=number((seller.data.get("trap") or {}).get("score")),
        stress=number((seller.data.get("expiry_stress") or {}).get("score")),
        straddle_band=_straddle_band(seller.data.get("chain") or {}, r),
    )


def _straddle_band(chain: dict[str, Any], r: dict[str, Any]) -> tuple[float, float] | None:
    """The chain group's straddle band, if it prices the range's expiry at its target."""
    band = (chain.get("straddle") or {}).get("band") or {}
    lower, upper = number(band.get("lower")), number(band.get("upper"))
    same = chain.get("expiry") == r.get("expiry") and band.get("coverage") == r["coverage_target"]
    return (lower, upper) if same and lower is not None and upper is not None else None


def vix_band(f: ClosingRange) -> tuple[float, float] | None:
    """The VIX lognormal band at the range's own target (the engine's formulas)."""
    if f.vix is None or f.vix <= 0 or f.spot is None:
        return None
    z = symmetric_normal_z(f.coverage_target)
    return safe_range(f.spot, f.vix, max(f.days_to_expiry, 1), z, z)


def lognormal_breach(f: ClosingRange, strike: float) -> float | None:
    """P(expiry close beyond ``strike``) under a driftless lognormal at VIX (the baseline)."""
    if f.vix is None or f.vix <= 0 or f.spot is None:
        return None
    return lognormal_breach_probability(f.spot, strike, f.vix, max(f.days_to_expiry, 1))


def score(forecasts: Iterable[ClosingRange], closes: Mapping[str, float]) -> list[Scored]:
    """Every forecast whose expiry has a final close (a later session stored)."""
    latest = max(closes, default="")
    out = []
    for f in forecasts:
        if f.expiry <= f.session or f.expiry >= latest or f.expiry not in closes:
            continue
        close = closes[f.expiry]
        band, straddle = vix_band(f), f.straddle_band
        out.append(
            Scored(
                forecast=f,
                expiry_close=close,
                inside=f.lower <= close <= f.upper,
                inside_vix_band=None if band is None else band[0] <= close <= band[1],
                inside_straddle_band=None
                if straddle is None
                else straddle[0] <= close <= straddle[1],
                breach=tuple(
                    (p, lognormal_breach(f, k), int(close > k if side == "above" else close < k))
                    for k, side, p in f.breach
                ),
            )
        )
    return out


TRAP_SESSIONS = 5


def annualised_vol(path: list[float]) -> float:
    """Close-to-close realised volatility of a path of closes, annualised (252 sessions)."""
    squares = sum(math.log(b / a) ** 2 for a, b in pairwise(path))
    return math.sqrt(squares * 252 / (len(path) - 1))


def trap_outcomes(
    forecasts: Iterable[ClosingRange], closes: Mapping[str, float]
) -> list[tuple[float, int]]:
    """(published trap probability, 1 if the realised vol of the next 5 sessions' closes
    exceeded VIX/100 at the forecast's close) for every forecast with 5 final closes after it
    (the newest stored session is still open)."""
    days = sorted(closes)
    position = {day: i for i, day in enumerate(days)}
    out = []
    for f in forecasts:
        i = position.get(f.session)
        if f.trap is None or f.vix is None or i is None or i + TRAP_SESSIONS >= len(days) - 1:
            continue
        realised = annualised_vol([closes[d] for d in days[i : i + TRAP_SESSIONS + 1]])
        out.append((f.trap, int(realised > f.vix / 100)))
    return out


def trap_scores(pairs: list[tuple[float, int]]) -> dict[str, Any]:
    """Brier of the published trap probability, beside a constant forecast at the rate the
    same sessions turned out to have (an in-sample climatology: the hardest constant); and
    its AUC (does it rank the trap sessions first; any constant scores 0.5)."""
    if not pairs:
        return {
            "scored": 0,
            "event_rate": None,
            "brier": None,
            "brier_observed_rate": None,
            "auc": None,
        }
    rate = sum(y for _, y in pairs) / len(pairs)
    return {
        "scored": len(pairs),
        "event_rate": round(rate, 4),
        "brier": round(sum((p - y) ** 2 for p, y in pairs) / len(pairs), 5),
        "brier_observed_rate": round(sum((rate - y) ** 2 for _, y in pairs) / len(pairs), 5),
        "auc": auc(pairs),
    }


def auc(pairs: list[tuple[float, int]]) -> float | None:
    """The probability that an event session got a higher score than a non-event one (ties
    count half): the Mann-Whitney form of the ROC AUC. None without both outcomes."""
    ranks = pd.Series([p for p, _ in pairs]).rank().to_numpy()
    events = [y == 1 for _, y in pairs]
    n_events = sum(events)
    n_others = len(pairs) - n_events
    if not n_events or not n_others:
        return None
    event_ranks = sum(r for r, event in zip(ranks, events, strict=True) if event)
    return round(float((event_ranks - n_events * (n_events + 1) / 2) / (n_events * n_others)), 4)


def stress_outcomes(
    forecasts: Iterable[ClosingRange], closes: Mapping[str, float]
) -> list[tuple[float, float, float]]:
    """(published stress score, VIX at the close, realised vol from the close to the expiry's
    close, annualised) for every forecast whose expiry has a final close."""
    days = sorted(closes)
    position = {day: i for i, day in enumerate(days)}
    out = []
    for f in forecasts:
        i, j = position.get(f.session), position.get(f.expiry)
        if f.stress is None or f.vix is None or i is None or j is None or not i < j < len(days) - 1:
            continue
        out.append((f.stress, f.vix, annualised_vol([closes[d] for d in days[i : j + 1]])))
    return out


def stress_scores(triples: list[tuple[float, float, float]]) -> dict[str, Any]:
    """Rank correlation of the stress score with the realised vol to expiry, beside VIX's."""
    if len(triples) < 3:
        return {"scored": len(triples), "spearman": None, "spearman_vix": None}
    frame = pd.DataFrame(triples, columns=["stress", "vix", "realised"])
    rho = frame.corr(method="spearman")["realised"]
    return {
        "scored": len(triples),
        "spearman": round(float(rho["stress"]), 4),
        "spearman_vix": round(float(rho["vix"]), 4),
    }


DIRECTION_HORIZONS = {"t1": 1, "t3": 3, "t5": 5, "t10": 10, "t20": 20, "t40": 40}
DIRECTION_CLASSES = ("up", "neutral", "down")
NEUTRAL_BAND_SIGMA = 0.25  # as the models' labels: NEUTRAL when |r| < 0.25·σ20·√h
SIGMA_SESSIONS = 20


@dataclass(frozen=True)
class DirectionCall:
    session: str
    horizon: str
    probabilities: tuple[float, ...]  # up, neutral, down
    climatology: tuple[float, ...] | None
    forecast: bool


def direction_calls(block: SignalBlock) -> list[DirectionCall]:
    """Every horizon of a direction block with its probabilities and climatology."""
    calls = []
    for horizon, h in (block.data.get("horizons") or {}).items():
        p, c = h.get("probabilities") or {}, h.get("climatology") or {}
        if (
            horizon not in DIRECTION_HORIZONS
            or in_sample(h)
            or any(number(p.get(k)) is None for k in DIRECTION_CLASSES)
        ):
            continue
        calls.append(
            DirectionCall(
                session=block.session_date,
                horizon=horizon,
                probabilities=tuple(float(p[k]) for k in DIRECTION_CLASSES),
                climatology=(
                    tuple(float(c[k]) for k in DIRECTION_CLASSES)
                    if all(number(c.get(k)) is not None for k in DIRECTION_CLASSES)
                    else None
                ),
                forecast=bool(h.get("forecast", True)),
            )
        )
    return calls


def direction_outcomes(
    calls: Iterable[DirectionCall], closes: Mapping[str, float]
) -> list[tuple[DirectionCall, int]]:
    """(call, class index of the h-session return: UP, NEUTRAL within 0.25·σ20·√h, DOWN) for
    every call with 20 earlier and h later final closes stored (σ20: the sample standard deviation
    of the 20 daily log returns to the close, as the models' daily features)."""
    days = sorted(closes)
    position = {day: i for i, day in enumerate(days)}
    out = []
    for call in calls:
        i, h = position.get(call.session), DIRECTION_HORIZONS[call.horizon]
        if i is None or i < SIGMA_SESSIONS or i + h >= len(days) - 1:
            continue
        window = [
            math.log(closes[days[k]] / closes[days[k - 1]])
            for k in range(i - SIGMA_SESSIONS + 1, i + 1)
        ]
        mean = sum(window) / len(window)
        sigma = math.sqrt(sum((r - mean) ** 2 for r in window) / (len(window) - 1))
        band = NEUTRAL_BAND_SIGMA * sigma * math.sqrt(h)
        r = math.log(closes[days[i + h]] / closes[days[i]])
        out.append((call, 0 if r >= band else 2 if r <= -band else 1))
    return out


def direction_scores(pairs: list[tuple[DirectionCall, int]]) -> dict[str, Any]:
    """Per horizon: the multi-class Brier of the published probabilities and of the block's
    own climatology, on the same calls, and the skill (1 - one over the other)."""
    out: dict[str, Any] = {}
    for horizon in DIRECTION_HORIZONS:
        rows = [(c, y) for c, y in pairs if c.horizon == horizon and c.climatology is not None]
        if not rows:
            continue

        def brier(probs: tuple[float, ...], y: int) -> float:
            return sum((p - (k == y)) ** 2 for k, p in enumerate(probs))

        model = sum(brier(c.probabilities, y) for c, y in rows) / len(rows)
        clim = sum(brier(c.climatology or (), y) for c, y in rows) / len(rows)
        out[horizon] = {
            "scored": len(rows),
            "forecasts": sum(c.forecast for c, _ in rows),
            "brier": round(model, 5),
            "brier_climatology": round(clim, 5),
            "skill": round(1 - model / clim, 4) if clim > 0 else None,
        }
    return out


def _rates(rows: list[Scored]) -> dict[str, Any]:
    banded = [r for r in rows if r.inside_vix_band is not None]
    priced = [r for r in rows if r.inside_straddle_band is not None]
    return {
        "scored": len(rows),
        "inside": sum(r.inside for r in rows),
        "hit_rate": round(sum(r.inside for r in rows) / len(rows), 4) if rows else None,
        "vix_band_inside": sum(bool(r.inside_vix_band) for r in banded),
        "vix_band_scored": len(banded),
        # the closes with a chain of the range's expiry: the market's own priced range
        "straddle_band_inside": sum(bool(r.inside_straddle_band) for r in priced),
        "straddle_band_scored": len(priced),
        "inside_where_straddle_scored": sum(r.inside for r in priced),
        "expiries": len({r.forecast.expiry for r in rows}),
    }


def _brier(rows: list[Scored]) -> dict[str, Any]:
    """Brier of the published breach probabilities and of the VIX lognormal's, same strikes."""
    pairs = [b for r in rows for b in r.breach if b[1] is not None]
    if not pairs:
        return {"strikes": 0, "brier": None, "brier_lognormal": None, "reduction": None}
    model = sum((p - y) ** 2 for p, _, y in pairs) / len(pairs)
    baseline = sum((q - y) ** 2 for _, q, y in pairs if q is not None) / len(pairs)
    return {
        "strikes": len(pairs),
        "brier": round(model, 5),
        "brier_lognormal": round(baseline, 5),
        "reduction": round(1 - model / baseline, 4) if baseline > 0 else None,
    }


LAST_CLOSES = 20  # the rolling window of the scorecard, in closes


def summarise(rows: list[Scored], last: int = LAST_CLOSES) -> dict[str, Any]:
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
        "breach": {"all": _brier(rows), "last": _brier(rows[-last:])},
        "window": f"{rows[0].forecast.session}..{rows[-1].forecast.session}" if rows else None,
    }


@dataclass(frozen=True)
class Outcomes:
    ranges: list[Scored]
    traps: list[tuple[float, int]]
    stresses: list[tuple[float, float, float]]
    directions: list[tuple[DirectionCall, int]]
    in_sample_left_out: int  # closing seller blocks a model had seen the date of


def score_history(
    markets: Iterable[SignalBlock],
    sellers: Iterable[SignalBlock],
    directions: Iterable[SignalBlock],
) -> Outcomes:
    """Every signal of each session's closing blocks against what the later closes did. A
    session's close is the spot of its last seller block (the engines publish every daily
    snapshot; the market block is conflated in a replay), else of its last market block."""
    by_day = {b.session_date: b for b in markets}
    sellers = list(sellers)
    forecasts = [
        f for b in sellers if (f := closing_range(b, by_day.get(b.session_date))) is not None
    ]
    closes = {day: s for day, b in by_day.items() if (s := number(b.data.get("spot"))) is not None}
    for b in sellers:  # outcomes: every session's close, in sample or not
        spot = number((b.data.get("safe_range") or {}).get("spot"))
        if spot is not None:
            closes[b.session_date] = spot
    calls = [c for b in directions for c in direction_calls(b)]
    return Outcomes(
        ranges=score(forecasts, closes),
        traps=trap_outcomes(forecasts, closes),
        stresses=stress_outcomes(forecasts, closes),
        directions=direction_outcomes(calls, closes),
        in_sample_left_out=sum(any(in_sample(g) for g in b.data.values()) for b in sellers),
    )
