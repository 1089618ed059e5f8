"""The outbox gets its own backoff clock: `next_try_at`, indexed with `sent_at`.

Before it, a failed delivery moved `created_at` to the time of that try and the worker added
the backoff to it. Rows waiting for a retry get the `next_try_at` that worker would have
computed (the backoff of that time, frozen here: 15 s doubling per try, at most an hour), so
the upgrade neither hurries nor delays them; their `created_at` stays the last try's time.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
OLD_MAX_TRIES = 8  # the worker's limit when this revision was written


def _old_backoff(tries: int) -> timedelta:
    return timedelta(seconds=min(3600, 15 * 2 ** max(0, tries - 1)))


def upgrade() -> None:
    op.add_column("outbox", sa.Column("next_try_at", TZ, nullable=True))
    op.create_index("ix_outbox_due", "outbox", ["sent_at", "next_try_at"])
    outbox = sa.table(
        "outbox",
        sa.column("id", sa.Integer),
        sa.column("created_at", TZ),
        sa.column("sent_at", TZ),
        sa.column("tries", sa.Integer),
        sa.column("next_try_at", TZ),
    )
    conn = op.get_bind()
    waiting = conn.execute(
        sa.select(outbox.c.id, outbox.c.created_at, outbox.c.tries).where(
            outbox.c.sent_at.is_(None), outbox.c.tries > 0, outbox.c.tries < OLD_MAX_TRIES
        )
    ).all()
    for row_id, last_try, tries in waiting:
        conn.execute(
            outbox.update()
            .where(outbox.c.id == row_id)
            .values(next_try_at=last_try + _old_backoff(tries))
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index("ix_outbox_due")
        batch.drop_column("next_try_at")
