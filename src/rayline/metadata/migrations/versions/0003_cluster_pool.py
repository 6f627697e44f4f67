"""Warm cluster pools: which pool a cluster was started for, and when it was adopted.

``pool`` names the pool shape (NULL for a cold-started cluster) and stays after
adoption for the audit trail; ``adopted_at`` is when a request took it over. The
POOLED state itself needs no migration: states are plain strings.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable columns: a plain ALTER TABLE on both SQLite and Postgres.
    with op.batch_alter_table("clusters") as batch:
        batch.add_column(sa.Column("pool", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("adopted_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_clusters_pool", ["pool"])


def downgrade() -> None:
    with op.batch_alter_table("clusters") as batch:
        batch.drop_index("ix_clusters_pool")
        batch.drop_column("adopted_at")
        batch.drop_column("pool")
