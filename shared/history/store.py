"""Reads and writes of the history database, one code path for SQLite (the embedded default:
a file, WAL mode, no server) and PostgreSQL (a deployment's shared server), through
SQLAlchemy Core. The schema is made by the Alembic migrations (``migrate``), never by
``create_all``, so both databases follow the same history of changes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import orjson
import redis
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, delete, event, func, select
from sqlalchemy.dialects import postgresql, sqlite

from shared.contract.codec import decode, encode
from shared.contract.schemas import SCHEMA_VERSION, AlertRecord, SignalBlock
from shared.history.schema import alert, block, series_point
from shared.history.series import SERIES, points

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
ENGINES = ("market", "direction", "seller", "buyer")


def open_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get WAL (readers never wait for the writer) and
    a busy timeout, their folder created."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def _insert(engine: Engine, table: Any) -> Any:
    """INSERT ... ON CONFLICT for the engine's dialect (a redelivered block rewrites its
    rows with the same values: nothing doubles)."""
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


class StoreUnavailable(redis.ConnectionError):
    """The history database did not answer: a worker's batch stays unacknowledged and is
    redone after a backoff (the worker loop's reconnect path), never dead-lettered."""


@dataclass(frozen=True)
class Point:
    as_of: int
    value: float


class HistoryStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # Writes -------------------------------------------------------------------------------
    def write(self, blocks: Sequence[SignalBlock], bodies: Sequence[bytes] | None = None) -> int:
        """Every block and its series points, in one transaction; the number of blocks.
        ``bodies``: each block's payload as read from the stream (kept as it is, not encoded
        again); without them, the blocks are encoded here."""
        if bodies is None:
            bodies = [encode(b)["d"] for b in blocks]
        rows: list[dict[str, Any]] = []
        pts: list[dict[str, Any]] = []
        for b, body in zip(blocks, bodies, strict=True):
            rows.append({"engine": b.engine, "as_of": b.as_of, "kind": b.kind, "body": body})
            pts.extend({"series": n, "as_of": b.as_of, "value": v} for n, v in points(b))
        rows, pts = (
            _last_per_key(rows, ("engine", "as_of")),
            _last_per_key(pts, ("series", "as_of")),
        )
        if not rows:
            return 0
        blocks_in = _insert(self.engine, block)
        points_in = _insert(self.engine, series_point)
        with self.engine.begin() as conn:
            conn.execute(
                blocks_in.on_conflict_do_update(
                    index_elements=["engine", "as_of"],
                    set_={"kind": blocks_in.excluded.kind, "body": blocks_in.excluded.body},
                ),
                rows,
            )
            if pts:
                conn.execute(
                    points_in.on_conflict_do_update(
                        index_elements=["series", "as_of"],
                        set_={"value": points_in.excluded.value},
                    ),
                    pts,
                )
        return len(rows)

    def write_alerts(self, records: Sequence[AlertRecord]) -> int:
        """Every alert record, in one transaction (an alert redelivered is written again with
        the same values); the number written."""
        rows = _last_per_key(
            [
                {
                    "id": r.id,
                    "as_of": r.as_of,
                    "rule": r.rule,
                    "severity": r.severity,
                    "body": orjson.dumps(r.record).decode(),
                }
                for r in records
            ],
            ("id",),
        )
        if not rows:
            return 0
        alerts_in = _insert(self.engine, alert)
        excluded = alerts_in.excluded
        with self.engine.begin() as conn:
            conn.execute(
                alerts_in.on_conflict_do_update(
                    index_elements=["id"],
                    set_={c: excluded[c] for c in ("as_of", "rule", "severity", "body")},
                ),
                rows,
            )
        return len(rows)

    def downsample(
        self, since: int, before: int, step_s: int, engines: Sequence[str] = ENGINES
    ) -> int:
        """Thin the rows of ``engines`` (their blocks and series) with ``since <= as_of <
        before`` to the last block per engine and the last point per series of each
        ``step_s`` (``as_of // step_s``); the rows deleted. Both bounds should be multiples
        of ``step_s``, so a step is thinned whole. One statement per engine and series: each
        is a range seek on the primary key."""
        deleted = 0
        keyed = [(block, block.c.engine, name) for name in engines] + [
            (series_point, series_point.c.series, s.name) for s in SERIES if s.engine in engines
        ]
        with self.engine.begin() as conn:
            for table, key, name in keyed:
                rows = (key == name) & table.c.as_of.between(since, before - 1)
                last = select(func.max(table.c.as_of)).where(rows).group_by(table.c.as_of // step_s)
                gone = conn.execute(delete(table).where(rows).where(table.c.as_of.not_in(last)))
                deleted += gone.rowcount
        return deleted

    # Reads --------------------------------------------------------------------------------
    def series(self, name: str, start: int, end: int, step_s: int = 0) -> list[Point]:
        """The points of ``name`` with ``start <= as_of <= end``, oldest first; with
        ``step_s``, the last point of each step (``as_of // step_s``)."""
        query = (
            select(series_point.c.as_of, series_point.c.value)
            .where(series_point.c.series == name)
            .where(series_point.c.as_of.between(start, end))
            .order_by(series_point.c.as_of)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        found = [Point(int(t), float(v)) for t, v in rows]
        if step_s <= 0:
            return found
        last: dict[int, Point] = {}
        for p in found:
            last[p.as_of // step_s] = p
        return list(last.values())

    def blocks_at(self, at: int) -> dict[str, SignalBlock]:
        """Every engine's newest block with ``as_of <= at``: the document as it was."""
        out: dict[str, SignalBlock] = {}
        with self.engine.connect() as conn:
            for engine in ENGINES:
                body = conn.execute(
                    select(block.c.body)
                    .where(block.c.engine == engine)
                    .where(block.c.as_of <= at)
                    .order_by(block.c.as_of.desc())
                    .limit(1)
                ).scalar()
                if body is not None:
                    out[engine] = _block(body)
        return out

    def blocks_between(self, engine: str, start: int, end: int, limit: int) -> list[SignalBlock]:
        """Up to ``limit`` of ``engine``'s blocks with ``start <= as_of <= end``, oldest first."""
        query = (
            select(block.c.body)
            .where(block.c.engine == engine)
            .where(block.c.as_of.between(start, end))
            .order_by(block.c.as_of)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            bodies = conn.execute(query).scalars().all()
        return [_block(body) for body in bodies]

    def closing_blocks(self, engine: str, start: int, end: int) -> list[SignalBlock]:
        """``engine``'s last block of each day (UTC day: an NSE session lies inside one) with
        ``start <= as_of <= end``, oldest first."""
        rows = (block.c.engine == engine) & block.c.as_of.between(start, end)
        last = select(func.max(block.c.as_of)).where(rows).group_by(block.c.as_of // 86_400)
        query = select(block.c.body).where(rows).where(block.c.as_of.in_(last))
        with self.engine.connect() as conn:
            bodies = conn.execute(query.order_by(block.c.as_of)).scalars().all()
        return [_block(body) for body in bodies]

    def alerts_until(self, at: int, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` alert records raised at or before ``at``, newest first."""
        query = (
            select(alert.c.body)
            .where(alert.c.as_of <= at)
            .order_by(alert.c.as_of.desc(), alert.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            bodies = conn.execute(query).scalars().all()
        return [orjson.loads(body) for body in bodies]

    def span(self) -> tuple[int | None, int | None, int]:
        """(first as_of, last as_of, blocks held)."""
        with self.engine.connect() as conn:
            first, last, count = conn.execute(
                select(func.min(block.c.as_of), func.max(block.c.as_of), func.count())
            ).one()
        return first, last, int(count)


def _block(body: bytes) -> SignalBlock:
    """A stored body back to its block, through the stream's own decoding."""
    return cast(SignalBlock, decode({"t": SignalBlock.TYPE, "v": SCHEMA_VERSION, "d": body}))


def _last_per_key(rows: Sequence[dict[str, Any]], key: tuple[str, ...]) -> list[dict[str, Any]]:
    """One row per key, the last given (a batch may repeat a block: ON CONFLICT cannot
    touch one row twice in one statement on PostgreSQL)."""
    return list({tuple(r[k] for k in key): r for r in rows}.values())
