"""Direction section: today's bias, horizons t1..t40, risk score, market regime (pure)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from shared.contract.document.direction import (
    DirectionData,
    Horizon,
    Horizons,
    Probabilities,
    RiskComponents,
    RiskScore,
    Today,
)
from shared.contract.document.market import MarketRegimeLabel
from shared.market.calendar import SESSION_MINUTES
from shared.models import calibrated
from shared.models.api import DIRECTION_CLASSES, HORIZONS
from shared.models.context import EngineContext, ModelOutput, run_batched
from shared.models.intraday import model_input
from shared.signals import fallbacks, labels, provenance, regimes

HORIZON_LABELS = {key: f"{h} session" + ("s" if h > 1 else "") for key, h in HORIZONS.items()}
CLIMATOLOGY_NOTE = (
    "the direction model showed no significant out-of-sample skill at {horizon}: "
    "these are the training window's class frequencies, not a forecast"
)


def _probabilities(raw: dict[str, float]) -> Probabilities:
    return Probabilities(**{k: round(float(raw[k]), 4) for k in DIRECTION_CLASSES})


def _move_points(spot: float, log_return: float) -> float:
    return round(spot * (math.exp(log_return) - 1), 2)


def horizons(ctx: EngineContext) -> Horizons:
    """Per horizon from the ``direction`` model (once per daily_as_of), else a random walk."""
    return _horizons(ctx, daily_parts(ctx, model_answer(ctx)))


def _horizons(ctx: EngineContext, parts: DailyParts) -> Horizons:
    spot = ctx.snapshot.spot
    return Horizons(
        **{
            key: Horizon(**fields, expected_move_points=_move_points(spot, ret))
            for key, (fields, ret) in parts.horizons.items()
        }
    )


def model_answer(ctx: EngineContext) -> ModelOutput | None:
    """The ``direction`` model's answer for the snapshot's session (once per daily_as_of);
    None while the session's sequence is not found."""
    snap = ctx.snapshot

    if ctx.sequence is None and ctx.model("direction") is not None:
        out = None  # not cached: the sequence may be in Redis for the next snapshot
    else:
        out = ctx.once(
            "direction.horizons",
            lambda: ctx.run_model(
                "direction",
                lambda m: (
                    m.predict(snap.daily, ctx.sequence),
                    {
                        h: (bool(m.beats_climatology(h)), m.climatology(h), m.source(h))
                        for h in HORIZONS
                    },
                    m.ref.training_window,
                ),
            ),
        )
    return out


HorizonParts = dict[str, tuple[dict[str, Any], float]]


@dataclass(frozen=True)
class DailyParts:
    """What a session's snapshots share: per horizon its fields but the expected move and
    that move's log return; the risk score and the regime."""

    horizons: HorizonParts
    risk_score: RiskScore
    regime: MarketRegimeLabel


def daily_parts(ctx: EngineContext, out: ModelOutput | None) -> DailyParts:
    """What is a function of the daily features and the model's answer alone (everything but
    the moves in points and today's bias): built once per session's features. The key holds
    the features themselves, so snapshots of one daily_as_of with other values get their own."""
    return ctx.once(
        ("direction.daily_parts", out is None, tuple(ctx.snapshot.daily.items())),
        lambda: _daily_parts(ctx, out),
    )


def _daily_parts(ctx: EngineContext, out: ModelOutput | None) -> DailyParts:
    horizons = _horizon_parts(ctx, out)
    fields_t5 = horizons["t5"][0]
    return DailyParts(horizons, *_risk_and_regime(ctx, fields_t5["probabilities"].down))


def _horizon_parts(ctx: EngineContext, out: ModelOutput | None) -> HorizonParts:
    """Per horizon: its fields but the expected move, and that move's log return."""
    snap = ctx.snapshot
    parts: HorizonParts = {}
    for key, sessions in HORIZONS.items():
        if out is not None and out.ok:
            preds, checks, window = out.value
            raw, (beats, clim, source), prov = preds[key], checks[key], out.provenance
            if source == "climatology":
                prov = provenance.climatology(
                    provenance.amended(prov, window=window), CLIMATOLOGY_NOTE.format(horizon=key)
                )
        else:
            why = (
                (out.problem or "")
                if out is not None
                else (
                    f"60-session sequence for {snap.daily_as_of} not found in aegis:features:daily"
                )
            )
            raw = fallbacks.random_walk_direction(snap.daily, sessions)
            clim = fallbacks.random_walk_direction({**snap.daily, "ret_20": 0.0}, sessions)
            beats, prov = False, provenance.heuristic(why, fallbacks.RANDOM_WALK_FORMULA)
        direction, conviction = labels.direction_call(raw)
        fields = {
            "label": HORIZON_LABELS[key],
            "direction": direction,
            "conviction": round(float(conviction), 4),
            "probabilities": _probabilities(raw),
            "forecast": prov.source == "model",
            "beats_climatology": beats,
            "climatology": _probabilities(clim),
            "provenance": prov,
        }
        parts[key] = (fields, float(raw["expected_return"]))
    return parts


TODAY = "direction.today"  # key of the batched intraday-model answer of a snapshot


def intraday_model_probabilities(model: Any, contexts: list[EngineContext]) -> list[Any]:
    """``direction_intraday`` over a batch of intraday snapshots: one matrix, one call."""
    rows = np.stack([model_input(c.snapshot.daily, c.snapshot.intraday or {}) for c in contexts])
    return [calibrated.as_dict(p, model.params) for p in model.predict_batch(rows)]


def is_intraday(ctx: EngineContext) -> bool:
    return ctx.snapshot.kind == "intraday" and bool(ctx.snapshot.intraday)


def today(ctx: EngineContext, by_horizon: Horizons) -> Today:
    """Intraday: where today's close lands vs the price now (``direction_intraday``).
    Daily (session closed): the next session's bias, i.e. horizon t1."""
    snap = ctx.snapshot
    if not is_intraday(ctx):
        t1 = by_horizon.t1
        return Today(
            direction=t1.direction,
            conviction=t1.conviction,
            probabilities=t1.probabilities,
            expected_move_points=t1.expected_move_points,
            basis="next session (t1)",
            provenance=t1.provenance,
        )
    out = ctx.batch_output(TODAY, "direction_intraday", intraday_model_probabilities)
    if out.ok:
        raw, prov = out.value, out.provenance
    else:
        minute = (snap.intraday or {}).get("minute_of_session") or 0.0
        left = max(0.0, SESSION_MINUTES - 1 - minute) / SESSION_MINUTES
        raw = fallbacks.random_walk_direction(snap.daily, max(left, 1 / SESSION_MINUTES))
        prov = provenance.heuristic(
            out.problem or "", fallbacks.RANDOM_WALK_FORMULA + " over the session fraction left"
        )
    direction, conviction = labels.direction_call(raw)
    return Today(
        direction=direction,
        conviction=round(float(conviction), 4),
        probabilities=_probabilities(raw),
        expected_move_points=_move_points(snap.spot, float(raw["expected_return"])),
        basis="rest of today's session",
        provenance=prov,
    )


def compute_direction(ctx: EngineContext) -> DirectionData:
    parts = daily_parts(ctx, model_answer(ctx))
    by_horizon = _horizons(ctx, parts)
    return DirectionData(
        today=today(ctx, by_horizon),
        horizons=by_horizon,
        risk_score=parts.risk_score,
        regime=parts.regime,
    )


def _risk_and_regime(ctx: EngineContext, p_down_t5: float) -> tuple[RiskScore, MarketRegimeLabel]:
    """Risk score and market regime: functions of the daily features (and t5's down)."""
    risk, components = labels.risk_score(ctx.snapshot.daily, p_down_t5)
    return (
        RiskScore(
            value=risk,
            components=RiskComponents(**components),
            provenance=provenance.from_formula(labels.RISK_FORMULA),
        ),
        MarketRegimeLabel(
            label=regimes.market_regime(ctx.snapshot.daily),
            provenance=provenance.from_formula(regimes.MARKET_REGIME_FORMULA),
        ),
    )


def compute_direction_batch(contexts: list[EngineContext]) -> list[DirectionData]:
    """``compute_direction`` of each snapshot, the intraday model called once for the batch."""
    intraday = [ctx for ctx in contexts if is_intraday(ctx)]
    run_batched(intraday, TODAY, "direction_intraday", intraday_model_probabilities)
    return [compute_direction(ctx) for ctx in contexts]
