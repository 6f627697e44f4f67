"""Cluster owner: the manager replica doing a cluster's background work.

With several Cluster Manager replicas (ZooKeeper coordination), the leader's
reconciliation must not fail or tear down a cluster another live replica is still
provisioning or terminating; ``owner`` names that replica (its coordination member
id). NULL for rows written before this revision: nobody alive owns them.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A nullable column: a plain ALTER TABLE on both SQLite and Postgres.
    with op.batch_alter_table("clusters") as batch:
        batch.add_column(sa.Column("owner", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clusters") as batch:
        batch.drop_column("owner")
