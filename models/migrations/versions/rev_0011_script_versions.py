"""Script versions: `script_version` (name, sha256, version, path, YAML text) and the version a
campaign dials with, `campaign.script_version_id` (nullable: NULL until a node or `campaign
start` pins one). See `models.scriptversions`.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-12
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "script_version",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("path", sa.String(500), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index("uq_script_version_hash", "script_version", ["name", "sha256"], unique=True)
    op.create_index("uq_script_version_number", "script_version", ["name", "version"], unique=True)
    # a plain column without a database-level foreign key: SQLite cannot add one in place
    op.add_column("campaign", sa.Column("script_version_id", sa.Integer, nullable=True))


def downgrade() -> None:
    op.drop_column("campaign", "script_version_id")  # SQLite 3.35+, PostgreSQL
    op.drop_index("uq_script_version_number", table_name="script_version")
    op.drop_index("uq_script_version_hash", table_name="script_version")
    op.drop_table("script_version")
