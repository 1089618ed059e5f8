"""Conversation memory: what a call heard, on the attempt and the lead.

- `call_attempt.slots` (JSON, nullable): the conversation's remembered slots at its end
  (``callflow.memory``: callback time, budget, team size, decision maker, products, contact
  details, objections).
- `call_attempt.scores` (JSON, nullable): the mood scores of each callee turn, in order
  (``[{"interest": .., "hesitation": .., "annoyance": ..}, ...]``): the interest trajectory.
- `lead.slots` (JSON, nullable): every attempt's slots merged, the latest value winning, so the
  next call and the CRM know what the lead already said.

Existing rows get NULL (nothing remembered). Downgrading drops the columns (SQLite 3.35+).

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-12
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("call_attempt", sa.Column("slots", sa.JSON, nullable=True))
    op.add_column("call_attempt", sa.Column("scores", sa.JSON, nullable=True))
    op.add_column("lead", sa.Column("slots", sa.JSON, nullable=True))


def downgrade() -> None:
    # plain DROP COLUMN (SQLite 3.35+, PostgreSQL): a batch copy would drop a referenced table
    for table, column in (("lead", "slots"), ("call_attempt", "scores"), ("call_attempt", "slots")):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
