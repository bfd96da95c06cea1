"""Typed message schemas shared by every service.

Every message on the bus is one of these immutable models; ``shared.codec`` turns them into
stream entries that name their type and schema version. Derived data is a new message.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION = 1

Symbol = Literal["NIFTY", "VIX"]
Interval = Literal["1d", "1m", "5m"]
Engine = Literal["market", "direction", "seller", "buyer"]
Source = Literal["model", "formula", "data", "heuristic", "climatology"]


class Message(BaseModel):
    """Base of every bus message: frozen, strict about unknown fields, no NaN or inf."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
    TYPE: ClassVar[str]


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


class OptionChain(Message):
    """One snapshot of the NIFTY option chain for one expiry."""

    TYPE: ClassVar[str] = "option_chain"
    snapshot_time: int
    expiry: str
    spot: float
    quotes: tuple[OptionQuote, ...]
    source: str
    lot_size: int | None = None  # contract multiplier used to turn contracts into units


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


class Provenance(BaseModel):
    """Where a value came from: a model (name, version), a formula, or data (window)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    source: Source
    model: str | None = None
    version: str | None = None
    formula: str | None = None
    window: str | None = None
    in_sample: bool | None = None  # True when as_of lies inside the model's training window
    note: str | None = None


class ModelRef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    version: str
    trained_at: str
    training_window: str | None = None


class SignalBlock(Message):
    """One engine's section of the output document, for one as_of bar.

    ``data`` holds the section's fields as documented in docs/DOCUMENT.md; every signal in it
    carries a ``provenance`` object. ``digest`` is a hash of ``data`` so receivers can tell a
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
    (``shared.participant_oi.RAW_COLUMNS`` order) or, from a history of nets, its nets only.
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
