"""The seller's positioning group: what FIIs hold in index futures and options (NSE's
participant-wise OI) and the near-month future's build-up, from the daily records known at
the snapshot (published the evening of their session, so a session's blocks see the
previous session's report at the newest). Pure."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal, cast

from shared.contract.document.chain import Buildup
from shared.contract.document.seller import (
    FutureDay,
    NetSeries,
    Positioning,
    PositioningFresh,
    PositioningStale,
    PositioningUnavailable,
)
from shared.contract.schemas import FeatureSnapshot, FuturesDay
from shared.market.calendar import previous_session
from shared.market.participant_oi import ParticipantOIDay
from shared.signals import provenance
from shared.signals.buildup import BUILDUP_FORMULA, future_buildup
from shared.signals.positioning import TREND_SESSIONS, Series, positioning

PARTICIPANT = "fii"
FUTURE_FORMULA = (
    "near-month future at the close: basis = 100 x (future - spot)/spot percent; build-up from "
    "the change in close and OI since the previous session's row (not across a roll to a new "
    "expiry): " + BUILDUP_FORMULA
)


def _series(series: Series | None) -> NetSeries | None:
    if series is None:
        return None
    return NetSeries(
        value_contracts=series.value,
        change_contracts=series.change,
        trend_contracts=series.trend,
        slope_sign=cast(Literal[-1, 0, 1] | None, series.slope_sign),
    )


def _future(futures: list[FuturesDay]) -> FutureDay | None:
    if not futures:
        return None
    now = futures[-1]
    before = futures[-2] if len(futures) > 1 else None
    buildup: Buildup | None = None
    reason = None
    if before is None:
        reason = "one futures row: no change to classify"
    elif before.expiry != now.expiry:
        reason = f"the near month rolled from {before.expiry} to {now.expiry}: not comparable"
    else:
        found = future_buildup(now.close, before.close, now.oi_units, before.oi_units)
        buildup = cast(Buildup, str(found))
    return FutureDay(
        session_date=now.session_date,
        expiry=now.expiry,
        close=now.close,
        basis_percent=None if now.basis_pct is None else round(100 * now.basis_pct, 4),
        oi_units=now.oi_units,
        oi_change_units=None if before is None else now.oi_units - before.oi_units,
        price_change_points=None if before is None else round(now.close - before.close, 2),
        buildup=buildup,
        buildup_reason=reason,
        provenance=provenance.from_formula(
            FUTURE_FORMULA,
            window=f"{before.session_date if before else now.session_date}..{now.session_date}"
            f" ({now.source})",
        ),
    )


def positioning_group(
    snapshot: FeatureSnapshot, days: list[ParticipantOIDay], futures: list[FuturesDay]
) -> Positioning:
    """FII index futures and options net (contracts), their change and trend, and the
    future's build-up; ``status`` is unavailable without records and stale when the newest
    report is older than the previous session's (the newest that can be out)."""
    due = previous_session(
        date.fromisoformat(snapshot.session_date) - timedelta(days=1)
    ).isoformat()
    if not days:
        reason = "no participant-wise OI report known at this snapshot (AEGIS_PARTICIPANT_OI_FILE)"
        return PositioningUnavailable(
            reason=reason, future=_future(futures), provenance=provenance.from_data(note=reason)
        )
    held = positioning(days, PARTICIPANT, TREND_SESSIONS)
    stale = held.as_of is not None and held.as_of < due
    window = f"{days[0].day}..{days[-1].day} ({days[-1].source})"
    report = PositioningStale if stale else PositioningFresh
    return report(
        reason=f"newest report is for {held.as_of}; {due}'s is due" if stale else None,
        participant=PARTICIPANT.upper(),
        report_date=held.as_of,
        previous_report_date=held.previous,
        trend_from=held.trend_from,
        index_futures=_series(held.index_futures),
        index_options=_series(held.index_options),
        futures_long_ratio=held.futures_long_ratio,
        futures_long_ratio_change=held.futures_long_ratio_change,
        notes=list(held.reasons),
        future=_future(futures),
        provenance=provenance.from_formula(held.formula, window=window),
    )
