"""NSE's participant-wise open interest (``fao_participant_oi_<DDMMYYYY>.csv``) as typed,
frozen records: one ``ParticipantOIDay`` per session with, for each of FII, DII, Client and
Pro, the nets in contracts (long - short) and, when read from NSE's own file, its long and
short counts. Loaders live in ``services.ingest.sources.participant_oi``; the positioning
signal in ``shared.signals.positioning``.

The nets are those of the shared history (data/SOURCES.md "participant-wise open
interest"): ``index_future_net = Future Index Long - Future Index Short``,
``stock_future_net`` likewise for stock futures, ``index_call_net = Option Index Call Long -
Option Index Call Short``, ``index_put_net = Option Index Put Long - Option Index Put Short``,
``index_option_direction = index_call_net - index_put_net`` and ``total_net = Total Long
Contracts - Total Short Contracts``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date

from shared.contract.schemas import ParticipantPositions

PARTICIPANTS = ("fii", "dii", "client", "pro")  # the history's column order
NET_FIELDS = (
    "index_future_net",
    "stock_future_net",
    "index_call_net",
    "index_put_net",
    "index_option_direction",
    "total_net",
)
HISTORY_COLUMNS = ("date", *(f"{p}_{n}" for p in PARTICIPANTS for n in NET_FIELDS))
# NSE's columns after "Client Type", in the file's order (two carry trailing spaces there)
RAW_COLUMNS = (
    "Future Index Long",
    "Future Index Short",
    "Future Stock Long",
    "Future Stock Short",
    "Option Index Call Long",
    "Option Index Put Long",
    "Option Index Call Short",
    "Option Index Put Short",
    "Option Stock Call Long",
    "Option Stock Put Long",
    "Option Stock Call Short",
    "Option Stock Put Short",
    "Total Long Contracts",
    "Total Short Contracts",
)


@dataclass(frozen=True)
class LongShort:
    """One participant's row of NSE's file, contracts, in the file's column order."""

    future_index_long: int
    future_index_short: int
    future_stock_long: int
    future_stock_short: int
    option_index_call_long: int
    option_index_put_long: int
    option_index_call_short: int
    option_index_put_short: int
    option_stock_call_long: int
    option_stock_put_long: int
    option_stock_call_short: int
    option_stock_put_short: int
    total_long: int
    total_short: int

    @classmethod
    def of(cls, values: tuple[int, ...]) -> LongShort:
        return cls(*values)

    def values(self) -> tuple[int, ...]:
        return tuple(getattr(self, f.name) for f in fields(self))

    def longs(self) -> int:
        """Sum of the six long columns (what ``total_long`` should be)."""
        return (
            self.future_index_long
            + self.future_stock_long
            + self.option_index_call_long
            + self.option_index_put_long
            + self.option_stock_call_long
            + self.option_stock_put_long
        )

    def shorts(self) -> int:
        return (
            self.future_index_short
            + self.future_stock_short
            + self.option_index_call_short
            + self.option_index_put_short
            + self.option_stock_call_short
            + self.option_stock_put_short
        )


@dataclass(frozen=True)
class ParticipantNets:
    """One participant's nets on one day, contracts. ``raw`` is None for history rows
    (they carry nets only)."""

    index_future_net: int
    stock_future_net: int
    index_call_net: int
    index_put_net: int
    total_net: int
    raw: LongShort | None = None

    @property
    def index_option_direction(self) -> int:
        """Index calls net - index puts net (> 0: the participant leans long via options)."""
        return self.index_call_net - self.index_put_net

    @classmethod
    def from_raw(cls, raw: LongShort) -> ParticipantNets:
        return cls(
            index_future_net=raw.future_index_long - raw.future_index_short,
            stock_future_net=raw.future_stock_long - raw.future_stock_short,
            index_call_net=raw.option_index_call_long - raw.option_index_call_short,
            index_put_net=raw.option_index_put_long - raw.option_index_put_short,
            total_net=raw.total_long - raw.total_short,
            raw=raw,
        )

    def nets(self) -> dict[str, int]:
        """The six history values, by ``NET_FIELDS`` name."""
        return {name: getattr(self, name) for name in NET_FIELDS}


@dataclass(frozen=True)
class ParticipantOIDay:
    """Participant-wise OI of one session. ``source`` names the file it was read from."""

    day: date
    fii: ParticipantNets
    dii: ParticipantNets
    client: ParticipantNets
    pro: ParticipantNets
    source: str

    def participant(self, name: str) -> ParticipantNets:
        if name not in PARTICIPANTS:
            raise KeyError(f"participant {name!r} is not one of {PARTICIPANTS}")
        nets: ParticipantNets = getattr(self, name)
        return nets

    def history_row(self) -> dict[str, str | int]:
        """The day as one row of the history CSV (``HISTORY_COLUMNS``)."""
        row: dict[str, str | int] = {"date": self.day.isoformat()}
        for name in PARTICIPANTS:
            for field, value in self.participant(name).nets().items():
                row[f"{name}_{field}"] = value
        return row


# The bus message (shared.contract.schemas.ParticipantPositions) <-> the record ------------
def to_message(day: ParticipantOIDay, available_at: int) -> ParticipantPositions:
    long_short = {
        p: n.raw.values() for p in PARTICIPANTS if (n := day.participant(p)).raw is not None
    }
    return ParticipantPositions(
        session_date=day.day.isoformat(),
        available_at=available_at,
        nets={p: day.participant(p).nets() for p in PARTICIPANTS},
        long_short=long_short if len(long_short) == len(PARTICIPANTS) else None,
        source=day.source,
    )


def from_message(message: ParticipantPositions) -> ParticipantOIDay:
    """The record of a message; raises ValueError when a participant or net is missing."""

    def nets(participant: str) -> ParticipantNets:
        values = message.nets.get(participant)
        if values is None or any(name not in values for name in NET_FIELDS):
            raise ValueError(f"participant positions lack {participant} nets")
        raw = (message.long_short or {}).get(participant)
        if raw is not None:
            return ParticipantNets.from_raw(LongShort.of(tuple(raw)))
        return ParticipantNets(
            index_future_net=values["index_future_net"],
            stock_future_net=values["stock_future_net"],
            index_call_net=values["index_call_net"],
            index_put_net=values["index_put_net"],
            total_net=values["total_net"],
        )

    return ParticipantOIDay(
        day=date.fromisoformat(message.session_date),
        fii=nets("fii"),
        dii=nets("dii"),
        client=nets("client"),
        pro=nets("pro"),
        source=message.source,
    )
