"""Typed message schemas shared by every service.

Every message on the bus is one of these immutable models; ``shared.contract.codec`` turns them into
stream entries that name their type and schema version. Derived data is a new message.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from operator import attrgetter
from typing import Any, ClassVar, Literal, Self, overload

import msgspec
import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    ValidationError,
    model_validator,
)
from pydantic_core import core_schema

SCHEMA_VERSION = 1  # of every message type that does not name its own ``VERSION``

Symbol = Literal["NIFTY", "VIX"]
Interval = Literal["1d", "1m", "5m"]
Engine = Literal["market", "direction", "seller", "buyer"]
Source = Literal["model", "formula", "data", "heuristic", "climatology"]


class Message(BaseModel):
    """Base of every bus message: frozen, strict about unknown fields, no NaN or inf."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = SCHEMA_VERSION  # a stream entry's ``v``


class Bar(Message):
    """One OHLC bar. ``open_time`` is the bar start in epoch seconds (daily bars: 09:15 IST
    of the session). ``final`` is False while the bar is still forming (today's daily bar,
    the current minute); a later bar with the same open_time supersedes it."""

    TYPE: ClassVar[str] = "bar"
    symbol: Symbol
    interval: Interval
    open_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float | None = None
    final: bool = True
    source: str

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.symbol, self.interval, self.open_time)


class OptionQuote(BaseModel):
    """One strike of a chain. OI and volume in units (contracts x lot size); IVs annualised
    fractions as published (None: not published); change in OI since the previous session's
    close as published. Fields after ``pe_iv`` are optional so older payloads decode."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    strike: float
    ce_ltp: float | None = None
    ce_oi: float = 0.0
    ce_iv: float | None = None
    pe_ltp: float | None = None
    pe_oi: float = 0.0
    pe_iv: float | None = None
    ce_oi_change: float | None = None
    pe_oi_change: float | None = None
    ce_volume: float | None = None
    pe_volume: float | None = None
    ce_bid: float | None = None
    ce_ask: float | None = None
    pe_bid: float | None = None
    pe_ask: float | None = None


QUOTE_FIELDS: tuple[str, ...] = tuple(OptionQuote.model_fields)
_ALWAYS_VALUED = [
    i for i, f in enumerate(OptionQuote.model_fields.values()) if f.annotation is float
]
_ROW = attrgetter(*QUOTE_FIELDS)
WIRE_FLOAT = np.dtype("<f8")


class Quotes(Sequence[OptionQuote]):
    """One chain's quotes stored by column, immutable: ``table`` is (``QUOTE_FIELDS`` x
    strikes) float64, NaN where a quote has no value (None; strike and OI always have one).

    It reads as a sequence of ``OptionQuote``, each built when asked for. The validator and
    the chain analytics read ``table`` (``shared.signals.chain_arrays``), so a chain decoded
    from the bus never becomes 150 objects per expiry. On the wire (``columns``) it is a map
    of field name to that column as little-endian float64 bytes, NaN for no value."""

    __slots__ = ("table",)

    def __init__(self, table: np.ndarray) -> None:
        if table.ndim != 2 or table.shape[0] != len(QUOTE_FIELDS):
            raise ValueError(f"a quotes table has {len(QUOTE_FIELDS)} rows, got {table.shape}")
        table = table.view()
        table.flags.writeable = False
        self.table = table

    @classmethod
    def from_rows(cls, rows: Iterable[OptionQuote]) -> Quotes:
        values = [_ROW(q) for q in rows]
        table = np.array(values, dtype=float).reshape(len(values), len(QUOTE_FIELDS))
        return cls(np.ascontiguousarray(table.T))

    @classmethod
    def from_columns(cls, columns: Mapping[str, Any]) -> Quotes:
        """The wire form back; ValueError naming what is wrong with it."""
        missing = [n for n in QUOTE_FIELDS if n not in columns]
        unknown = sorted(set(columns) - set(QUOTE_FIELDS))
        if missing or unknown:
            raise ValueError(f"quote columns missing {missing}, unknown {unknown}")
        data = [columns[n] for n in QUOTE_FIELDS]
        sizes = {len(b) if isinstance(b, bytes | bytearray) else -1 for b in data}
        if len(sizes) != 1 or min(sizes) % WIRE_FLOAT.itemsize:
            raise ValueError(
                f"quote columns must be float64 bytes of one length, got sizes {sorted(sizes)}"
            )
        table = np.frombuffer(b"".join(data), WIRE_FLOAT).reshape(len(QUOTE_FIELDS), -1)
        infinite = np.isinf(table).any(axis=1)
        if infinite.any():
            raise ValueError(
                f"quote column {QUOTE_FIELDS[infinite.argmax()]} holds an infinite value"
            )
        unvalued = np.isnan(table[_ALWAYS_VALUED]).any(axis=1)
        if unvalued.any():
            name = QUOTE_FIELDS[_ALWAYS_VALUED[unvalued.argmax()]]
            raise ValueError(f"quote column {name} lacks a value")
        return cls(table)

    def columns(self) -> dict[str, bytes]:
        return {
            name: np.ascontiguousarray(column, WIRE_FLOAT).tobytes()
            for name, column in zip(QUOTE_FIELDS, self.table, strict=True)
        }

    def __len__(self) -> int:
        return int(self.table.shape[1])

    @overload
    def __getitem__(self, index: int) -> OptionQuote: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[OptionQuote, ...]: ...

    def __getitem__(self, index: int | slice) -> OptionQuote | tuple[OptionQuote, ...]:
        if isinstance(index, slice):
            return tuple(map(_quote, self.table.T[index].tolist()))
        return _quote(self.table[:, index].tolist())

    def __iter__(self) -> Iterator[OptionQuote]:
        return map(_quote, self.table.T.tolist())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Quotes):
            return self.table.shape == other.table.shape and bool(
                np.array_equal(self.table, other.table, equal_nan=True)
            )
        if isinstance(other, tuple | list):
            return tuple(self) == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.table.shape, self.table.tobytes()))

    def __repr__(self) -> str:
        return f"Quotes({len(self)} strikes)"

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            _quotes_of,
            serialization=core_schema.plain_serializer_function_ser_schema(Quotes.columns),
        )


def _quote(values: list[float]) -> OptionQuote:
    """A quote from its column values (NaN: no value); validated when it entered the table."""
    fields: dict[str, Any] = {
        name: None if v != v else v for name, v in zip(QUOTE_FIELDS, values, strict=True)
    }
    return OptionQuote.model_construct(**fields)


def _quotes_of(value: Any) -> Quotes:
    """Validation of ``OptionChain.quotes``: the wire's columns, or quotes (``OptionQuote``s
    or their fields) in strike order as the sources give them."""
    if isinstance(value, Quotes):
        return value
    if isinstance(value, Mapping):
        return Quotes.from_columns(value)
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        raise ValueError("quotes must be a sequence of quotes or a map of quote columns")
    rows = []
    for i, row in enumerate(value):
        try:
            rows.append(row if isinstance(row, OptionQuote) else OptionQuote.model_validate(row))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
            )
            raise ValueError(f"quote {i}: {problems}") from None
    return Quotes.from_rows(rows)


class OptionChain(Message):
    """One snapshot of the NIFTY option chain for one expiry. ``quotes`` may be given as
    ``OptionQuote``s; it is kept (and sent) by column."""

    TYPE: ClassVar[str] = "option_chain"
    VERSION: ClassVar[int] = 2  # 2: quotes by column; 1 (not read): a map per strike
    snapshot_time: int
    expiry: str
    spot: float
    quotes: Quotes
    source: str
    lot_size: int | None = None  # contract multiplier used to turn contracts into units

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """As pydantic's (nothing in ``update`` is validated); ``quotes`` in it may be a
        sequence of ``OptionQuote``s."""
        if update is not None and "quotes" in update and not isinstance(update["quotes"], Quotes):
            update = {**update, "quotes": Quotes.from_rows(update["quotes"])}
        return super().model_copy(update=update, deep=deep)


def _finite_or_none(value: Any) -> bool:
    return not isinstance(value, float) or math.isfinite(value)


class FeatureSnapshot(Message):
    """What the engines see: the latest daily features, and for ``kind == 'intraday'`` the
    state of the session so far. Everything in it uses data up to ``as_of`` only."""

    TYPE: ClassVar[str] = "feature_snapshot"
    kind: Literal["daily", "intraday"]
    symbol: Literal["NIFTY"] = "NIFTY"
    as_of: int  # epoch seconds when the bar this reflects closed
    session_date: str  # IST date of the session
    spot: float
    prev_close: float | None
    vix: float | None
    vix_prev_close: float | None
    vix_as_of: str | None  # date of the VIX bar used
    next_expiry: str
    days_to_expiry: int  # calendar days, expiry day counts as 0
    sessions_to_expiry: int
    daily_as_of: str  # date of the last completed daily row in ``daily``
    daily: dict[str, float | None]
    intraday: dict[str, float | None] | None = None
    sequence: tuple[tuple[float | None, ...], ...] | None = None  # daily kind only

    @model_validator(mode="before")
    @classmethod
    def _nan_to_none(cls, values: Any) -> Any:
        """Features legitimately lack values early in history: store those as None."""
        if isinstance(values, dict):
            for name in ("daily", "intraday"):
                section = values.get(name)
                if isinstance(section, dict) and not all(map(_finite_or_none, section.values())):
                    values[name] = {
                        k: (v if _finite_or_none(v) else None) for k, v in section.items()
                    }
        return values


class Provenance(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """Where a value came from: a model (name, version), a formula, or data (window). A
    field left None is not written."""

    source: Source
    model: str | None = None
    version: str | None = None
    formula: str | None = None
    window: str | None = None
    in_sample: bool | None = None  # True when as_of lies inside the model's training window
    note: str | None = None


class ModelRef(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A model version a block used."""

    # a msgspec struct, as the document contract's are; in a pydantic message (SignalBlock)
    # it validates and dumps through msgspec

    name: str
    version: str
    trained_at: str
    training_window: str | None = None

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            _model_ref_of,
            serialization=core_schema.plain_serializer_function_ser_schema(msgspec.structs.asdict),
        )


def _model_ref_of(value: Any) -> ModelRef:
    if isinstance(value, ModelRef):
        return value
    return msgspec.convert(value, ModelRef)  # ValidationError is a ValueError: pydantic's


class SignalBlock(Message):
    """One engine's section of the output document, for one as_of bar.

    An engine builds ``data`` as its struct of the document contract
    (``shared.contract.document``) and it travels as that struct's msgpack
    (``shared.contract.blocks.build_block``); ``data`` here is its map, as every reader decodes
    it (the gateway decodes it into the struct again, which checks it). Every signal group in it
    carries a ``provenance``. ``digest`` is a hash of the content so receivers can tell a
    redelivered duplicate (same as_of, same digest) from an update.
    """

    TYPE: ClassVar[str] = "signal_block"
    engine: Engine
    as_of: int
    session_date: str
    kind: Literal["daily", "intraday"]
    computed_at: int  # epoch milliseconds
    freshness_limit_s: int
    models: tuple[ModelRef, ...] = ()
    degraded: tuple[str, ...] = ()
    data: dict[str, Any]
    digest: str


class DeadLetter(Message):
    """A message that failed validation or kept failing, with the reason. Never dropped."""

    TYPE: ClassVar[str] = "dead_letter"
    origin_stream: str
    origin_id: str | None
    service: str
    reason: str
    payload: bytes  # the original payload, or its first bytes when payload_size is larger
    failed_at: int  # epoch milliseconds
    payload_size: int | None = None  # bytes of the original payload (None: older letters)


class ModelPublished(Message):
    """Announces that a new model version is live in the registry."""

    TYPE: ClassVar[str] = "model_published"
    name: str
    version: str
    path: str


class ParticipantPositions(Message):
    """NSE's participant-wise open interest of one session (contracts): per participant
    (fii, dii, client, pro) its long and short columns as NSE publishes them
    (``shared.market.participant_oi.RAW_COLUMNS`` order) or, from a history of nets, its nets only.
    ``available_at`` is when the report can be known (the session's evening, after the
    close): consumers use a record only at or after it, so a replay sees no later report."""

    TYPE: ClassVar[str] = "participant_positions"
    session_date: str
    available_at: int  # epoch seconds
    nets: dict[str, dict[str, int]]  # participant -> NET_FIELDS name -> contracts
    long_short: dict[str, tuple[int, ...]] | None = None  # participant -> RAW_COLUMNS values
    source: str


class FuturesDay(Message):
    """The near-month NIFTY future at one session's close (NSE F&O bhavcopy): price, open
    interest in units, and its basis to the index; known from ``available_at`` on."""

    TYPE: ClassVar[str] = "futures_day"
    session_date: str
    available_at: int  # epoch seconds
    expiry: str
    close: float
    oi_units: float
    oi_change_units: float | None = None
    basis_pct: float | None = None  # (future - spot) / spot, a fraction
    source: str


class AlertRecord(Message):
    """An alert as services.alerts recorded it on aegis:alerts (a JSON record, docs/ALERTS.md):
    what the history keys and orders it by, and ``record``, all of it. Not a bus message of
    its own: the alerts stream carries the JSON as it is."""

    TYPE: ClassVar[str] = "alert"
    id: str = Field(min_length=1, max_length=200)
    as_of: int = Field(ge=0, description="the as_of of the block that raised it, epoch s")
    rule: str = Field(max_length=200)
    severity: str = Field(max_length=16)
    record: dict[str, Any]


MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.TYPE: cls
    for cls in (
        Bar,
        OptionChain,
        FeatureSnapshot,
        SignalBlock,
        DeadLetter,
        ModelPublished,
        ParticipantPositions,
        FuturesDay,
    )
}
