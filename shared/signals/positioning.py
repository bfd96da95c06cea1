"""Participant positioning from NSE's participant-wise open interest (pure): a participant's
(by default FII) index-futures net and index-option net, their change from the previous
record, their trend over the last ``sessions`` records, and the long share of its index
futures when the records carry NSE's long/short counts. Each value is in contracts; a value
that cannot be had is None and ``reasons`` says why."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from shared.market.participant_oi import PARTICIPANTS, ParticipantNets, ParticipantOIDay

TREND_SESSIONS = 5
POSITIONING_FORMULA = (
    "futures net = Future Index Long - Future Index Short; option net = (Option Index Call "
    "Long - Call Short) - (Option Index Put Long - Put Short); change = value(t) - value(t-1 "
    "record); trend = value(t) - value(t-{n} records); slope = least-squares slope of the last "
    "{n}+1 values per record, slope_sign = sign(slope); long ratio = Future Index Long / (Future "
    "Index Long + Future Index Short)"
)


@dataclass(frozen=True)
class Series:
    """One net series of the participant at the last record."""

    value: int
    change: int | None  # vs the previous record (None: only one record)
    trend: int | None  # value - value ``sessions`` records earlier (None: too short)
    slope: float | None  # contracts per record over the last ``sessions`` + 1 records
    slope_sign: int | None  # -1, 0 or 1


@dataclass(frozen=True)
class Positioning:
    participant: str
    as_of: str | None  # ISO date of the last record
    previous: str | None  # ISO date of the record ``change`` is measured from
    trend_from: str | None  # ISO date of the record ``trend`` is measured from
    sessions: int
    index_futures: Series | None
    index_options: Series | None  # calls net - puts net
    futures_long_ratio: float | None  # long / (long + short) of index futures, 0..1
    futures_long_ratio_change: float | None  # vs the previous record
    reasons: tuple[str, ...]  # why any value above is None
    formula: str


def _slope(values: Sequence[int]) -> float:
    n = len(values)
    mean_x = (n - 1) / 2
    mean_y = sum(values) / n
    num = sum((i - mean_x) * (v - mean_y) for i, v in enumerate(values))
    den = sum((i - mean_x) ** 2 for i in range(n))
    return num / den


def _series(values: Sequence[int], sessions: int) -> Series:
    last = values[-1]
    window = values[-(sessions + 1) :] if len(values) > sessions else None
    slope = None if window is None else round(_slope(window), 2)
    return Series(
        value=last,
        change=last - values[-2] if len(values) > 1 else None,
        trend=None if window is None else last - window[0],
        slope=slope,
        slope_sign=None if slope is None else (slope > 0) - (slope < 0),
    )


def _long_ratio(nets: ParticipantNets) -> float | None:
    raw = nets.raw
    if raw is None or raw.future_index_long + raw.future_index_short == 0:
        return None
    return round(raw.future_index_long / (raw.future_index_long + raw.future_index_short), 4)


def positioning(
    days: Sequence[ParticipantOIDay], participant: str = "fii", sessions: int = TREND_SESSIONS
) -> Positioning:
    """Positioning at the last of ``days`` (oldest first, dates strictly increasing: a
    ValueError otherwise). Changes and trends count records, not calendar days: a missing
    session makes one step span two sessions (``previous`` / ``trend_from`` show the dates)."""
    if participant not in PARTICIPANTS:
        raise ValueError(f"participant {participant!r} is not one of {PARTICIPANTS}")
    if sessions < 1:
        raise ValueError("sessions must be at least 1")
    for earlier, later in pairwise(days):
        if later.day <= earlier.day:
            raise ValueError(f"records out of order: {later.day} after {earlier.day}")
    formula = POSITIONING_FORMULA.format(n=sessions)
    if not days:
        return Positioning(
            participant, None, None, None, sessions, None, None, None, None,
            ("no participant OI records",), formula,
        )  # fmt: skip
    nets = [d.participant(participant) for d in days]
    futures = _series([n.index_future_net for n in nets], sessions)
    options = _series([n.index_option_direction for n in nets], sessions)
    reasons: list[str] = []
    if len(days) < 2:
        reasons.append("one record: no change from a previous day")
    if len(days) <= sessions:
        reasons.append(f"{len(days)} records: the trend needs {sessions + 1}")
    ratio = _long_ratio(nets[-1])
    before = _long_ratio(nets[-2]) if len(nets) > 1 else None
    if nets[-1].raw is None:
        reasons.append("the last record has nets only (history row): no long/short ratio")
    elif ratio is None:
        reasons.append("no index futures open on either side: no long/short ratio")
    elif before is None and len(nets) > 1:
        reasons.append("the previous record has no long/short counts: no ratio change")
    return Positioning(
        participant=participant,
        as_of=days[-1].day.isoformat(),
        previous=days[-2].day.isoformat() if len(days) > 1 else None,
        trend_from=days[-(sessions + 1)].day.isoformat() if len(days) > sessions else None,
        sessions=sessions,
        index_futures=futures,
        index_options=options,
        futures_long_ratio=ratio,
        futures_long_ratio_change=(
            None if ratio is None or before is None else round(ratio - before, 4)
        ),
        reasons=tuple(reasons),
        formula=formula,
    )
