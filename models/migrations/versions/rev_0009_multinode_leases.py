"""Many nodes on one database: when a lead was claimed, and leases on CRM outbox rows.

- `lead.claimed_at` (nullable): when the lead's current claim was taken. A lease that expires
  (its node died) is recorded as a `worker_lost` attempt from this time to the lease's end, so
  a lead's attempt rows cover every moment it was in a call, and never overlap.
- `outbox.claimed_by`, `outbox.claimed_until` (nullable): the node delivering a row and until
  when. A node claims due rows (FOR UPDATE SKIP LOCKED on PostgreSQL, the write lock on
  SQLite) before it sends them, so two nodes never deliver the same row; a node that dies
  mid-delivery leaves the row to another once the lease has passed.

Existing rows get NULL (not claimed). Downgrading drops the columns (SQLite 3.35 or later).

Revision ID: 0009
Revises: 0006
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0006"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("lead", sa.Column("claimed_at", TZ, nullable=True))
    op.add_column("outbox", sa.Column("claimed_by", sa.String(64), nullable=True))
    op.add_column("outbox", sa.Column("claimed_until", TZ, nullable=True))


def downgrade() -> None:
    # plain DROP COLUMN (SQLite 3.35+, PostgreSQL): a batch copy would drop a referenced table
    for table, column in (
        ("outbox", "claimed_until"),
        ("outbox", "claimed_by"),
        ("lead", "claimed_at"),
    ):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
