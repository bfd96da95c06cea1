"""Time sanity on the stream's own clock (pure): whether a bar can be applied now.

The stream's clock is the newest bar applied on any series. A bar dated past the first
session after that day cannot be judged yet: it is held, not applied. The next bar of its
series decides. At or after the held one, the jump was real (a gap in the data, a feed back
after an outage): both are applied, in order. Older, and the held bar was out of sequence: a
near-future record, which applied would make every real bar before it look old (features
dropped 5,625 real minutes after one; a daily one froze the document). It is refused.

So one record can never move a series past data still to come, in a replay (where the wall
clock cannot judge: all of it is in the past) as live (a feed back after a week is one bar
late, not refused).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.contract.schemas import Bar
from shared.market import calendar
from shared.market.validation import describe


@dataclass(frozen=True)
class HeldBar:
    bar: Bar
    revision: int
    entry_id: str  # its entry on aegis:bars (acknowledged: the state holds it)
    clock_s: int  # the newest bar applied when it arrived

    @property
    def why(self) -> str:
        return (
            f"{describe(self.bar)} ({calendar.ist_iso(self.bar.open_time)}) is past the first "
            f"session after the stream's newest bar ({calendar.ist_iso(self.clock_s)})"
        )

    def to_checkpoint(self) -> dict[str, Any]:
        return {
            "bar": self.bar.model_dump(),
            "revision": self.revision,
            "entry_id": self.entry_id,
            "clock_s": self.clock_s,
        }

    @classmethod
    def from_checkpoint(cls, data: dict[str, Any]) -> HeldBar:
        return cls(Bar(**data["bar"]), data["revision"], data["entry_id"], data["clock_s"])


@dataclass(frozen=True)
class Admission:
    ready: tuple[tuple[Bar, int], ...]  # (bar, revision) to apply now, in this order
    refused: tuple[tuple[HeldBar, str], ...]  # held bars shown out of sequence, with why
    held: dict[str, HeldBar]  # the series' held bars after this one


def series_of(bar: Bar) -> str:
    return f"{bar.symbol}:{bar.interval}"


def admit(
    bar: Bar,
    revision: int,
    entry_id: str,
    held: Mapping[str, HeldBar],
    clock_s: int | None,
) -> Admission:
    """What to do with ``bar`` given the held bars and the stream's clock (the newest bar
    applied; None before the first)."""
    series = series_of(bar)
    waiting = held.get(series)
    others = {k: v for k, v in held.items() if k != series}
    refused: tuple[tuple[HeldBar, str], ...] = ()
    if waiting is not None:
        if (bar.open_time, revision) >= (waiting.bar.open_time, waiting.revision):
            return Admission(((waiting.bar, waiting.revision), (bar, revision)), (), others)
        why = (
            f"{waiting.why}, and the series' next bar ({calendar.ist_iso(bar.open_time)}) "
            "is older: out of sequence"
        )
        refused = ((waiting, why),)
    if clock_s is not None and calendar.beyond_next_session(bar.open_time, clock_s):
        return Admission((), refused, {**others, series: HeldBar(bar, revision, entry_id, clock_s)})
    return Admission(((bar, revision),), refused, others)
