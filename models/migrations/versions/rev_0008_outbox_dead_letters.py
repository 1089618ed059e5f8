"""CRM dead letters: `outbox.dead_at`, when a row stopped being retried.

A row becomes a dead letter after `crm.max_tries` failed deliveries, or at once when the CRM's
answer cannot get better by retrying (a 4xx); the outbox worker then leaves it alone until
`main.py crm replay` clears `dead_at` (and its tries). Before this revision a dead row was one
with `tries` >= 8 (the old fixed limit) and no `sent_at`: those rows get `dead_at` = their
`next_try_at` (the time of their last failure plus its backoff) or, without one, their
`created_at`, so they stay dead letters and can be replayed.

Downgrading drops the column; replayable rows keep their `tries`, so the old code still reads
a dead letter with 8 tries as failed. It needs SQLite 3.35 or later.

Revision ID: 0008
Revises: 0009
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0009"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
OLD_MAX_TRIES = 8  # the worker's fixed limit before this revision


def upgrade() -> None:
    op.add_column("outbox", sa.Column("dead_at", TZ, nullable=True))
    outbox = sa.table(
        "outbox",
        sa.column("created_at", TZ),
        sa.column("sent_at", TZ),
        sa.column("tries", sa.Integer),
        sa.column("next_try_at", TZ),
        sa.column("dead_at", TZ),
    )
    op.execute(
        outbox.update()
        .where(outbox.c.sent_at.is_(None), outbox.c.tries >= OLD_MAX_TRIES)
        .values(dead_at=sa.func.coalesce(outbox.c.next_try_at, outbox.c.created_at))
    )


def downgrade() -> None:
    # plain DROP COLUMN (SQLite 3.35+, PostgreSQL): a batch copy would drop a referenced table
    op.drop_column("outbox", "dead_at")
