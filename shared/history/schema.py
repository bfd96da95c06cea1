"""The history's tables (SQLAlchemy Core; created and changed only by the Alembic migrations
in ``services/history/migrations``). Designed for its two questions: a series over a time
range (primary key: series, time) and every engine's block as it was at time T (primary
key: engine, time; the newest at or before T is one index seek)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, LargeBinary, MetaData, String, Table, Text

metadata = MetaData()

series_point = Table(
    "series_point",
    metadata,
    Column("series", String(32), primary_key=True),
    Column("as_of", BigInteger, primary_key=True, doc="epoch seconds of the block"),
    Column("value", Float, nullable=False),
)

alert = Table(
    "alert",
    metadata,
    Column("id", String(200), primary_key=True, doc="the alert's deterministic id"),
    Column("as_of", BigInteger, nullable=False, index=True, doc="epoch s of its block"),
    Column("rule", String(200), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("body", Text, nullable=False, doc="the alert record as JSON"),
)

block = Table(
    "block",
    metadata,
    Column("engine", String(16), primary_key=True),
    Column("as_of", BigInteger, primary_key=True, doc="epoch seconds"),
    Column("kind", String(16), nullable=False),
    Column("body", LargeBinary, nullable=False, doc="the block as on the stream (msgpack)"),
)
