"""One lead per (campaign, phone): the unique index `uq_lead_campaign_phone`.

A unique index rather than a table constraint: same guarantee (and the conflict target of
the importer's INSERT ... ON CONFLICT DO NOTHING), and SQLite adds it without copying the
lead table (a copy would have to drop a table other rows refer to).

Two imports at once could store a number twice in one campaign, and the dialer would then
call it twice. A database that already holds such duplicates is refused, not repaired: the
migration cannot know which of two leads (each with its own attempts, turns and outcome) the
operator means to keep, and deleting either loses rows. The error says how many leads and
which campaign ids; nothing is changed (the upgrade's transaction is rolled back). To find
them::

    SELECT campaign_id, phone, count(*) FROM lead GROUP BY campaign_id, phone
    HAVING count(*) > 1;

then keep one lead per number (e.g. move the others' call_attempt/outbox rows to it, or
delete leads never dialled) and start the node again.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

NAME = "uq_lead_campaign_phone"


def _refuse_duplicates() -> None:
    lead = sa.table("lead", sa.column("campaign_id", sa.Integer), sa.column("phone", sa.String))
    groups = (
        sa.select(lead.c.campaign_id, sa.func.count().label("n"))
        .group_by(lead.c.campaign_id, lead.c.phone)
        .having(sa.func.count() > 1)
        .subquery()
    )
    rows = op.get_bind().execute(sa.select(groups.c.campaign_id, groups.c.n)).all()
    if not rows:
        return
    extra = sum(n - 1 for _, n in rows)
    ids = ", ".join(str(c) for c in sorted({c for c, _ in rows}))
    raise RuntimeError(
        f"migration 0003 (one lead per campaign and phone): {extra} duplicate leads repeat a "
        f"phone already in their campaign (campaign ids {ids}); nothing was changed: keep one "
        "lead per phone in each campaign (see models/migrations/versions/"
        "rev_0003_lead_unique_phone.py), then start again"
    )


def upgrade() -> None:
    _refuse_duplicates()
    op.create_index(NAME, "lead", ["campaign_id", "phone"], unique=True)


def downgrade() -> None:
    op.drop_index(NAME, table_name="lead")
