"""Seller section: safe range, max pain, volatility trap, skew, expiry stress, breach curve,
seller flag, measured hit rate (pure)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
from msgspec.structs import replace

from services.seller.chain_depth import depth_groups
from services.seller.positioning import positioning_group
from shared.contract.document.base import Selection
from shared.contract.document.chain import (
    AtmIv,
    ChainFresh,
    ChainMaxPain,
    ChainUnavailable,
    DeltaSkew,
    OiRow,
    Pcr,
    SellerChain,
    Smile,
    SmilePoint,
    Straddle,
    StraddleBand,
    Wall,
    Walls,
)
from shared.contract.document.seller import (
    BreachCurve,
    BreachPoint,
    ExpiryStress,
    HitRate,
    MaxPain,
    SafeRange,
    SellerData,
    SellerFlag,
    Side,
    Skew,
    StressProbabilities,
    Trap,
    VixRegimeLabel,
)
from shared.contract.schemas import (
    FeatureSnapshot,
    FuturesDay,
    OptionChain,
    OptionQuote,
    Provenance,
)
from shared.features.daily import SEQUENCE_FEATURES
from shared.market.calendar import daily_close_time, ist_iso, to_date
from shared.market.chain_view import ChainView, years_to_expiry
from shared.market.participant_oi import ParticipantOIDay
from shared.models.api import vix_regime
from shared.models.context import EngineContext
from shared.signals import chain as chain_signals
from shared.signals import fallbacks, labels, provenance, term_structure
from shared.signals.breach import (
    LOGNORMAL_BREACH_FORMULA,
    breach_strikes,
    lognormal_breach_probability,
)
from shared.signals.chain_arrays import as_arrays, quote_columns
from shared.signals.greeks import ATM_IV_FORMULA
from shared.signals.max_pain import MAX_PAIN_FORMULA, compute_max_pain
from shared.signals.provenance import amended
from shared.signals.rounding import as_optional
from shared.signals.safe_range import (
    SAFE_RANGE_FORMULA,
    implied_move_points,
    safe_range,
    symmetric_normal_z,
)
from shared.signals.skew import (
    CHAIN_SKEW_FORMULA,
    RETURN_SKEW_FORMULA,
    SECONDS_PER_YEAR,
    chain_skew,
    return_distribution_skew,
)

DailyRecords = tuple[list[ParticipantOIDay], list[FuturesDay]]  # known at the snapshot
SKEW_WING = 0.02  # OTM distance of the skew strikes, as a fraction of the forward
CORE_FORMULA = (
    "LHAR forecast of ln RV5 (ln vol_har_d/w/m, ln VIX, returns and their negative parts) "
    "blended with India VIX by weights fitted on the training window; trap = logistic link of "
    "the forecast gap; range/breach = empirical scaled-move quantiles per VIX regime and "
    "days-to-expiry bucket"
)
TRAP_BASELINE_FORMULA = "training base rate of RV5 > VIX (climatology)"
STRESS_BASELINE_FORMULA = "training frequencies of the RV-to-expiry terciles in this VIX regime"


def selection_summary(selection: dict[str, Any]) -> tuple[Selection, str]:
    """(the group's ``selection`` object, the provenance note saying which is live and by
    how much it won on the trainer's validation window)."""
    skill = selection.get("skill")
    note = (
        f"live={selection['live']}; baseline: {selection['baseline']}; validation "
        f"{selection['metric']} model {selection['model_score']:.4g} vs baseline "
        f"{selection['baseline_score']:.4g} (skill {skill:+.3g}) over "
        f"{selection['samples']} sessions {selection.get('window', '')}"
    )
    fields: dict[str, Any] = {k: selection.get(k) for k in Selection.__struct_fields__}
    return Selection(**fields), note


def core_selection(ctx: EngineContext, signal: str) -> tuple[bool, Selection | None, str]:
    """(whether the seller model is live for ``signal``, its selection, a provenance note);
    without a seller model: (False, None, why). Once per daily_as_of (the model's choice
    is fixed; shared read-only by the session's blocks)."""
    return ctx.once(("seller.selection", signal), lambda: _core_selection(ctx, signal))


def _core_selection(ctx: EngineContext, signal: str) -> tuple[bool, Selection | None, str]:
    out = ctx.run_model("seller", lambda m: m.selection(signal))
    if not out.ok:
        return False, None, out.problem or ""
    chosen, note = selection_summary(out.value)
    return chosen.live == "model", chosen, note


def _baseline_provenance(
    ctx: EngineContext, formula: str, note: str, selection: Selection | None
) -> Provenance:
    """A baseline value: a formula when the model chose it, a heuristic when no model."""
    if selection is None:
        return provenance.heuristic(note, formula)
    prov = ctx.model_provenance("seller", formula=formula)
    return provenance.amended(prov, source="formula", note=note)


def current_vix(ctx: EngineContext) -> float:
    vix = ctx.snapshot.vix if ctx.snapshot.vix is not None else ctx.snapshot.daily.get("vix")
    if vix is None:
        raise ValueError("snapshot has no India VIX")
    return float(vix)


def sessions_to_expiry(ctx: EngineContext) -> float:
    """Sessions to the expiry close: whole sessions after today plus, intraday, the share of
    today's session still to trade (what the core's sqrt(n/252) scale counts)."""
    return ctx.snapshot.sessions_to_expiry + (ctx.days_to_expiry - ctx.snapshot.days_to_expiry)


def safe_range_group(ctx: EngineContext, regime: str) -> SafeRange:
    live, selection, note = core_selection(ctx, "expiry_range")
    if live:
        snap, coverage = ctx.snapshot, ctx.settings.coverage_target
        out = ctx.run_model(
            "seller",
            lambda m: m.range_bounds(
                snap.daily, snap.spot, coverage, ctx.days_to_expiry, sessions_to_expiry(ctx)
            ),
        )
        if out.ok:
            lower, upper = out.value
            vix = current_vix(ctx)
            vix_scale = vix / 100 * math.sqrt(ctx.days_to_expiry / 365)
            return SafeRange(
                # the same bounds in VIX-implied sigmas, comparable with the baseline band's z
                **range_section(
                    snap,
                    vix,
                    lower,
                    upper,
                    coverage,
                    -math.log(lower / snap.spot) / vix_scale,
                    math.log(upper / snap.spot) / vix_scale,
                ),
                selection=selection,
                provenance=provenance.amended(out.provenance, formula=CORE_FORMULA, note=note),
            )
    group = vix_band_group(ctx, regime)
    if selection is not None:
        group = replace(
            group, selection=selection, provenance=provenance.amended(group.provenance, note=note)
        )
    return group


def vix_band_group(ctx: EngineContext, regime: str) -> SafeRange:
    """The baseline range: the VIX band with the stats model's calibrated z per side."""
    snap, days = ctx.snapshot, ctx.days_to_expiry
    out = ctx.once(
        ("seller.safe_range_z", regime),
        lambda: ctx.run_model("stats", lambda m: m.safe_range_z(regime)),
    )
    if out.ok:
        z_lower, z_upper, coverage = out.value
        prov = provenance.amended(out.provenance, formula=SAFE_RANGE_FORMULA)
    else:
        coverage = ctx.settings.coverage_target
        z_lower = z_upper = symmetric_normal_z(coverage)
        prov = provenance.heuristic(
            f"{out.problem}; symmetric normal z, not calibrated", SAFE_RANGE_FORMULA
        )
    vix = current_vix(ctx)
    lower, upper = safe_range(snap.spot, vix, days, z_lower, z_upper)
    return SafeRange(
        **range_section(snap, vix, lower, upper, coverage, float(z_lower), float(z_upper)),
        provenance=prov,
    )


def range_section(
    snap: FeatureSnapshot,
    vix: float,
    lower: float,
    upper: float,
    coverage: float,
    z_lower: float,
    z_upper: float,
) -> dict[str, Any]:
    """A safe range's fields (bounds, target, expiry, the bounds in VIX-implied sigmas, and
    the spot and VIX it was made at: what the history's scorecard scores it from)."""
    return {
        "spot": round(snap.spot, 2),
        "vix": round(vix, 4),
        "lower": round(lower, 2),
        "upper": round(upper, 2),
        "coverage_target": coverage,
        "expiry": snap.next_expiry,
        "days_to_expiry": snap.days_to_expiry,
        "z_lower": round(z_lower, 4),
        "z_upper": round(z_upper, 4),
    }


def max_pain_group(chain: OptionChain | None, missing: str | None = None) -> MaxPain:
    """Max pain of the target expiry's fresh chain (the chain group's); ``missing`` says why
    there is none."""
    if chain is None:
        reason = missing or "no option-chain source configured"
        return MaxPain(strike=None, reason=reason, provenance=provenance.from_data(note=reason))
    tolerance = 0.02
    result = compute_max_pain(chain.quotes, tolerance=tolerance)
    if result is None:
        reason = f"option chain of {ist_iso(chain.snapshot_time)} carries no open interest"
        return MaxPain(strike=None, reason=reason, provenance=provenance.from_data(note=reason))
    return MaxPain(
        strike=result.strike,
        lower=result.lower,
        upper=result.upper,
        chain_as_of=ist_iso(chain.snapshot_time),
        expiry=chain.expiry,
        provenance=provenance.from_data(
            window=f"chain {ist_iso(chain.snapshot_time)}",
            formula=MAX_PAIN_FORMULA.format(tolerance=tolerance),
        ),
    )


def trap_group(ctx: EngineContext) -> Trap:
    daily = ctx.snapshot.daily
    live, selection, note = core_selection(ctx, "trap")
    call = (lambda m: m.trap_probability(daily)) if live else (lambda m: m.trap_base_rate())
    out = ctx.once(f"seller.trap.{live}", lambda: ctx.run_model("seller", call))
    score: float | None
    if out.ok and live:
        score = float(out.value)
        prov = provenance.amended(
            out.provenance, formula=f"P(RV5 > VIX/100) from the {CORE_FORMULA}", note=note
        )
    elif out.ok:
        score = float(out.value)
        prov = _baseline_provenance(ctx, TRAP_BASELINE_FORMULA, note, selection)
    else:
        score = fallbacks.trap_score(daily)
        prov = provenance.heuristic(out.problem or "", fallbacks.TRAP_FORMULA)
    return Trap(
        selection=selection,
        score=None if score is None else round(score, 4),
        label=None if score is None else labels.trap_label(score),
        iv_percentile=daily.get("vix_pct_252"),
        rv_percentile=daily.get("rv_pct_252"),
        provenance=prov,
    )


def stress_group(ctx: EngineContext) -> ExpiryStress:
    daily = ctx.snapshot.daily
    live, selection, note = core_selection(ctx, "stress")
    regime = vix_regime(daily.get("vix"))
    call = (
        (lambda m: m.stress_probabilities(daily))
        if live
        else (lambda m: m.stress_climatology(regime))
    )
    out = ctx.once(f"seller.stress.{live}", lambda: ctx.run_model("seller", call))
    if out.ok and live:
        probs = out.value
        prov = provenance.amended(out.provenance, formula=labels.STRESS_FORMULA, note=note)
    elif out.ok:
        probs = out.value
        prov = _baseline_provenance(
            ctx, f"{STRESS_BASELINE_FORMULA}; {labels.STRESS_FORMULA}", note, selection
        )
    else:
        probs = fallbacks.stress_probabilities(daily)
        prov = provenance.heuristic(out.problem or "", fallbacks.STRESS_FORMULA)
    if probs is None:
        return ExpiryStress(score=None, label=None, probabilities=None, provenance=prov)
    score = labels.stress_score(probs)
    return ExpiryStress(
        selection=selection,
        score=round(score, 4),
        label=labels.stress_label(score),
        probabilities=StressProbabilities(
            **{k: round(float(probs[k]), 4) for k in ("low", "medium", "high")}
        ),
        provenance=prov,
    )


def skew_group(ctx: EngineContext, chain: OptionChain | None) -> Skew:
    if chain is not None:
        years = (daily_close_time(to_date(chain.expiry)) - chain.snapshot_time) / SECONDS_PER_YEAR
        skew = chain_skew(chain.quotes, chain.spot, years, wing=SKEW_WING)
        if skew is not None:
            return Skew(
                put=skew.put,
                call=skew.call,
                net=skew.net,
                atm_iv=skew.atm_iv,
                method="chain_iv",
                provenance=provenance.from_data(
                    window=f"chain {ist_iso(chain.snapshot_time)}",
                    formula=CHAIN_SKEW_FORMULA.format(d=SKEW_WING),
                ),
            )
    if ctx.sequence is not None:
        # the daily sequence is the session's: computed once per daily_as_of
        group = ctx.once("seller.return_skew", lambda: _return_skew_group(ctx))
        if group is not None:
            return group
    reason = "no usable option chain and no 60-session return sequence"
    return Skew(
        put=None, call=None, net=None, method=None, provenance=provenance.from_data(note=reason)
    )


def _return_skew_group(ctx: EngineContext) -> Skew | None:
    assert ctx.sequence is not None
    returns = ctx.sequence[:, SEQUENCE_FEATURES.index("ret_1")].tolist()
    skew = return_distribution_skew(returns)
    if skew is None:
        return None
    window = f"{len(returns)} sessions to {ctx.snapshot.daily_as_of}"
    return Skew(
        put=skew.put,
        call=skew.call,
        net=skew.net,
        method="return_distribution",
        provenance=provenance.from_data(window=window, formula=RETURN_SKEW_FORMULA),
    )


def breach_group(ctx: EngineContext) -> BreachCurve:
    snap, vix, days = ctx.snapshot, current_vix(ctx), ctx.days_to_expiry
    strikes = breach_strikes(snap.spot)
    live, selection, note = core_selection(ctx, "expiry_range")
    sessions = sessions_to_expiry(ctx)
    out = ctx.run_model(
        "seller",
        lambda m: m.breach_probabilities(
            snap.daily, snap.spot, [s.strike for s in strikes], days, sessions
        ),
    )
    if out.ok and live:  # the survival function of the distribution the range is cut from
        probs = out.value
        prov = provenance.amended(out.provenance, formula=CORE_FORMULA, note=note)
    else:
        probs = [lognormal_breach_probability(snap.spot, s.strike, vix, days) for s in strikes]
        prov = _baseline_provenance(
            ctx, LOGNORMAL_BREACH_FORMULA, note or out.problem or "", selection
        )
    points = [
        BreachPoint(
            strike=s.strike,
            distance_points=s.distance_points,
            distance_pct=s.distance_pct,
            side=cast(Side, s.side),
            probability=round(p, 4),
        )
        for s, p in zip(strikes, probs, strict=True)
    ]
    return BreachCurve(points=points, selection=selection, provenance=prov)


# The chain group -------------------------------------------------------------------------------
PCR_NEAR = 0.02  # near-ATM band for the PCR, as a fraction of spot
CHART_BAND = 0.05  # strikes within this fraction of spot go into oi_by_strike
MIN_IV_HISTORY = 20  # earlier snapshots needed before an ATM IV percentile is shown


def _straddle_band(
    ctx: EngineContext, straddle: chain_signals.StraddleMove | None, spot: float
) -> StraddleBand | None:
    """The straddle's lognormal band at the safe range's coverage target: the market's own
    priced range to this expiry, the harder baseline beside the VIX band."""
    if straddle is None:
        return None
    coverage = ctx.settings.coverage_target
    z = symmetric_normal_z(coverage)
    lower, upper = chain_signals.straddle_band(spot, straddle.one_sd_points, z)
    return StraddleBand(
        lower=lower, upper=upper, coverage=coverage, formula=chain_signals.STRADDLE_BAND_FORMULA
    )


def _wall(w: chain_signals.Wall) -> Wall:
    return Wall(
        strike=w.strike,
        oi=w.oi,
        change_since_previous=w.change_since_previous,
        change_published=w.change_published,
        distance_points=w.distance_points,
    )


def oi_by_strike(chain: OptionChain, previous: Sequence[OptionQuote] | None) -> list[OiRow]:
    """OI of each strike within ``CHART_BAND`` of spot, in the chain's order, and its change
    since the ``previous`` snapshot (None for a strike it lacks); read from the columns."""
    now = quote_columns(chain.quotes)
    near = np.abs(now["strike"] / chain.spot - 1) <= CHART_BAND
    strike, ce_oi, pe_oi = (now[name][near] for name in ("strike", "ce_oi", "pe_oi"))
    ce_change: list[float | None] = [None] * strike.size
    pe_change = ce_change
    before = as_arrays(previous) if previous else None
    if before is not None:  # each strike's row there (of equal strikes the last), if any
        at = np.searchsorted(before.strike, strike, side="right") - 1
        found = (at >= 0) & (before.strike[np.maximum(at, 0)] == strike)
        ce_change, pe_change = (
            as_optional(np.where(found, oi - then[at], np.nan))
            for oi, then in ((ce_oi, before.ce_oi), (pe_oi, before.pe_oi))
        )
    return [
        OiRow(strike=k, ce_oi=ce, pe_oi=pe, ce_change=dce, pe_change=dpe)
        for k, ce, pe, dce, dpe in zip(
            strike.tolist(), ce_oi.tolist(), pe_oi.tolist(), ce_change, pe_change, strict=True
        )
    ]


def chart_points(smile: chain_signals.Smile | None) -> list[SmilePoint]:
    """The smile's points within ``CHART_BAND`` in log-moneyness, read from its columns."""
    if smile is None:
        return []
    near = np.abs(smile.log_moneyness) <= CHART_BAND
    return [
        SmilePoint(strike=k, iv=iv, side="put" if put else "call", published=published)
        for k, iv, put, published in zip(
            *(column[near].tolist() for column in (smile.strikes, smile.ivs, smile.is_put)),
            smile.published[near].tolist(),
            strict=True,
        )
    ]


def chain_group(ctx: EngineContext, view: ChainView | None) -> SellerChain:
    """PCR, OI walls, smile, 25-delta skew, straddle move and ATM IV from the fresh chain of
    the target expiry; without one, every value is None and ``reason`` says why."""
    if view is None or view.chain is None:
        reason = (
            view.reason if view is not None and view.reason else "no option-chain source configured"
        )
        return ChainUnavailable(reason=reason, provenance=provenance.from_data(note=reason))
    chain, years = view.chain, years_to_expiry(view.chain)
    window = f"chain {ist_iso(chain.snapshot_time)} ({chain.source}), expiry {chain.expiry}"
    data = provenance.from_data(window=window)
    pcr = chain_signals.put_call_ratio(chain.quotes, chain.spot, near=PCR_NEAR)
    previous = view.previous.quotes if view.previous is not None else None
    calls, puts = chain_signals.oi_walls(chain.quotes, chain.spot, previous)
    smile = chain_signals.chain_smile(chain.quotes, chain.spot, years)
    skew = chain_signals.delta_skew(smile, years) if smile is not None else None
    straddle = chain_signals.straddle_move(chain.quotes, chain.spot)
    atm, history = view.atm_iv, chain_signals.as_column(view.atm_iv_history)
    start = ist_iso(view.history_from) if view.history_from else "-"
    enough = len(history) >= MIN_IV_HISTORY and atm is not None
    has_vix = ctx.snapshot.vix is not None or ctx.snapshot.daily.get("vix") is not None
    # the VIX one-sd move over the same time to expiry, beside the straddle's
    vix_move = (
        round(implied_move_points(chain.spot, current_vix(ctx), years * 365), 2)
        if has_vix
        else None
    )
    pain = compute_max_pain(chain.quotes, tolerance=0.02)
    assert view.age_s is not None  # a fresh chain's age is known
    return ChainFresh(
        expiry=chain.expiry,
        chain_as_of=ist_iso(chain.snapshot_time),
        age_s=view.age_s,
        spot=chain.spot,
        source=chain.source,
        pcr=Pcr(
            oi=pcr.oi,
            volume=pcr.volume,
            oi_near_atm=pcr.oi_near_atm,
            volume_near_atm=pcr.volume_near_atm,
            near_strikes=pcr.near_strikes,
            provenance=amended(data, formula=chain_signals.PCR_FORMULA.format(near=PCR_NEAR)),
        ),
        walls=Walls(
            calls=[_wall(w) for w in calls],
            puts=[_wall(w) for w in puts],
            previous_as_of=ist_iso(view.previous.snapshot_time) if view.previous else None,
            provenance=amended(data, formula=chain_signals.WALLS_FORMULA.format(count=3)),
        ),
        smile=Smile(
            forward=smile.forward if smile else None,
            forward_from_parity=smile.forward_from_parity if smile else None,
            points=chart_points(smile),
            provenance=amended(data, formula=chain_signals.SMILE_FORMULA),
        ),
        delta_skew=DeltaSkew(
            risk_reversal=skew.risk_reversal if skew else None,
            put_strike=skew.put_strike if skew else None,
            put_iv=skew.put_iv if skew else None,
            call_strike=skew.call_strike if skew else None,
            call_iv=skew.call_iv if skew else None,
            provenance=amended(data, formula=chain_signals.DELTA_SKEW_FORMULA.format(d=0.25)),
        ),
        straddle=Straddle(
            strike=straddle.strike if straddle else None,
            move_points=straddle.move_points if straddle else None,
            move_pct=straddle.move_pct if straddle else None,
            one_sd_points=straddle.one_sd_points if straddle else None,
            vix_implied_move_points=vix_move,
            band=_straddle_band(ctx, straddle, chain.spot),
            provenance=amended(data, formula=chain_signals.STRADDLE_FORMULA),
        ),
        atm_iv=AtmIv(
            value=atm,
            percentile=(
                chain_signals.percentile_rank(history, atm) if enough and atm is not None else None
            ),
            rank=term_structure.iv_rank(history, atm) if enough and atm is not None else None,
            history_snapshots=len(history),
            reason=None if enough else f"{len(history)} earlier snapshots (< {MIN_IV_HISTORY})",
            provenance=provenance.from_data(
                window=f"{len(history)} snapshots of {view.history_expiries} expiries from "
                f"{start} to {ist_iso(chain.snapshot_time)}",
                formula=f"{chain_signals.ATM_IV_PERCENTILE_FORMULA}; "
                f"{term_structure.IV_RANK_FORMULA}; ATM IV: {ATM_IV_FORMULA}",
            ),
        ),
        max_pain=ChainMaxPain(
            strike=pain.strike if pain else None,
            lower=pain.lower if pain else None,
            upper=pain.upper if pain else None,
            provenance=amended(data, formula=MAX_PAIN_FORMULA.format(tolerance=0.02)),
        ),
        oi_by_strike=oi_by_strike(chain, previous),
        **depth_groups(view, CHART_BAND),
        provenance=data,
    )


def compute_seller(
    ctx: EngineContext, chain_view: ChainView | None = None, daily: DailyRecords = ([], [])
) -> SellerData:
    """Every chain-derived value (max pain, chain skew, the chain group) reads the one chain
    of ``chain_view``: the target expiry's, fresh by one rule, or none with one reason."""
    chain = chain_view.chain if chain_view is not None else None
    missing = chain_view.reason if chain_view is not None else None
    regime = vix_regime(current_vix(ctx))
    trap, stress = trap_group(ctx), stress_group(ctx)
    flag, reasons = (
        labels.seller_flag(trap.label, stress.label, trap.iv_percentile, trap.rv_percentile)
        if trap.label and stress.label
        else (None, ["trap or stress unavailable"])
    )
    return SellerData(
        safe_range=safe_range_group(ctx, regime),
        max_pain=max_pain_group(chain, missing),
        trap=trap,
        skew=skew_group(ctx, chain),
        expiry_stress=stress,
        breach_probabilities=breach_group(ctx),
        seller_flag=SellerFlag(
            label=flag,
            reasons=reasons,
            provenance=provenance.from_formula(labels.SELLER_FLAG_FORMULA),
        ),
        historical_hit_rate=ctx.measured_rate("hit_rate", regime, HitRate),
        chain=chain_group(ctx, chain_view),
        positioning=positioning_group(ctx.snapshot, *daily),
        regime=VixRegimeLabel(
            label=regime,
            provenance=provenance.from_formula("India VIX < 13 LOW, < 20 NORMAL, else HIGH"),
        ),
    )
