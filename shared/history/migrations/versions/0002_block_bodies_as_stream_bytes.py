"""Block bodies as the stream's own msgpack payload, not re-encoded JSON: the worker stores
the bytes it read (no encoding per block), and they are about 12 % smaller.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack
import orjson
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"

CHUNK = 2_000


def _recreate(body_type: type[sa.types.TypeEngine[Any]], convert: Callable[[Any], Any]) -> None:
    """Copy every block into a new table whose body is ``body_type`` (each body through
    ``convert``), then put it in the old one's place."""
    connection = op.get_bind()
    old = sa.table(
        "block", sa.column("engine"), sa.column("as_of"), sa.column("kind"), sa.column("body")
    )
    new = op.create_table(
        "block_new",
        sa.Column("engine", sa.String(16), primary_key=True),
        sa.Column("as_of", sa.BigInteger, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("body", body_type, nullable=False),
    )
    # a server-side cursor on PostgreSQL: the table is read a chunk at a time
    rows = connection.execute(sa.select(old).execution_options(stream_results=True)).mappings()
    while chunk := rows.fetchmany(CHUNK):
        op.bulk_insert(new, [{**row, "body": convert(row["body"])} for row in chunk])
    op.drop_table("block")
    op.rename_table("block_new", "block")
    if connection.dialect.name == "postgresql":  # the key keeps its table's name: no clash
        op.execute("ALTER TABLE block RENAME CONSTRAINT block_new_pkey TO block_pkey")


def upgrade() -> None:
    _recreate(sa.LargeBinary, lambda body: msgpack.packb(orjson.loads(body), use_bin_type=True))


def downgrade() -> None:
    _recreate(sa.Text, lambda body: orjson.dumps(msgpack.unpackb(body)).decode())
