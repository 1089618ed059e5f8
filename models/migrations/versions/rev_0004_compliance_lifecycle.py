"""Compliance and lifecycle: per-campaign do-not-call lists, calling windows, lead consent.

- `dnc_campaign` (campaign_id, phone): one campaign's do-not-call list. The rows of `dnc`
  stay as they are: the global list.
- `campaign.calling_hours`, `campaign.calling_days` (nullable): a campaign's own calling
  window; NULL keeps the node's (`campaign.calling_hours` / `calling_days` in the config).
- `campaign.status`: the lifecycle draft -> running <-> paused -> completed; the old
  `active` becomes `running` (the code still reads `active` as running).
- `lead.source`, `lead.consent` (nullable): where a lead came from and whether it consented;
  existing leads get NULL (not recorded).
- `ix_lead_phone`: frequency caps count a number's attempts across campaigns by phone.

Downgrading maps `running` back to `active` (the only status the old code dials) and drops
the new columns and table (their content is lost); it needs SQLite 3.35 or later.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def _rename_status(old: str, new: str) -> None:
    campaign = sa.table("campaign", sa.column("status", sa.String))
    op.execute(campaign.update().where(campaign.c.status == old).values(status=new))


def upgrade() -> None:
    op.create_table(
        "dnc_campaign",
        sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaign.id"), nullable=False),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("source", sa.String(40), nullable=False),
        sa.Column("added_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "phone"),
    )
    op.add_column("campaign", sa.Column("calling_hours", sa.String(200), nullable=True))
    op.add_column("campaign", sa.Column("calling_days", sa.String(100), nullable=True))
    op.add_column("lead", sa.Column("source", sa.String(200), nullable=True))
    op.add_column("lead", sa.Column("consent", sa.Boolean, nullable=True))
    op.create_index("ix_lead_phone", "lead", ["phone"])
    _rename_status("active", "running")


def downgrade() -> None:
    _rename_status("running", "active")
    op.drop_index("ix_lead_phone", table_name="lead")
    # plain DROP COLUMN (SQLite 3.35+, PostgreSQL): a batch copy of lead or campaign would
    # drop a table other rows refer to
    for table, column in (
        ("lead", "consent"),
        ("lead", "source"),
        ("campaign", "calling_days"),
        ("campaign", "calling_hours"),
    ):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    op.drop_table("dnc_campaign")
