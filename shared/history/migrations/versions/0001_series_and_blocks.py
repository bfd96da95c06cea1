"""The series points and the whole blocks.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "series_point",
        sa.Column("series", sa.String(32), primary_key=True),
        sa.Column("as_of", sa.BigInteger, primary_key=True),
        sa.Column("value", sa.Float, nullable=False),
    )
    op.create_table(
        "block",
        sa.Column("engine", sa.String(16), primary_key=True),
        sa.Column("as_of", sa.BigInteger, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("block")
    op.drop_table("series_point")
