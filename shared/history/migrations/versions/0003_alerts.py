"""The alerts services.alerts raised, beside the blocks (time travel shows them too).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "alert",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("as_of", sa.BigInteger, nullable=False),
        sa.Column("rule", sa.String(200), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_index("ix_alert_as_of", "alert", ["as_of"])


def downgrade() -> None:
    op.drop_table("alert")
