"""The call's edge: each attempt's recording and transfer.

- `call_attempt.recording_path` (nullable): the folder holding the call's two tracks
  (``callee.wav``, ``robot.wav``; mode 0o700, files 0o600); NULL: not recorded, or the
  recording was deleted by the retention sweep.
- `call_attempt.transfer_mode` (nullable): how the call was handed to a person, a
  `core.vocab.TransferMode` (refer, bridge); NULL: no transfer was tried.
- `call_attempt.agent_answered` (nullable): whether the agent answered that transfer.

Existing attempts get NULL in all three (not recorded, no transfer). Downgrading drops the
columns (their content is lost); it needs SQLite 3.35 or later.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("call_attempt", sa.Column("recording_path", sa.String(500), nullable=True))
    op.add_column("call_attempt", sa.Column("transfer_mode", sa.String(10), nullable=True))
    op.add_column("call_attempt", sa.Column("agent_answered", sa.Boolean, nullable=True))


def downgrade() -> None:
    # plain DROP COLUMN (SQLite 3.35+, PostgreSQL): a batch copy would drop a table that turn
    # rows refer to
    op.drop_column("call_attempt", "agent_answered")
    op.drop_column("call_attempt", "transfer_mode")
    op.drop_column("call_attempt", "recording_path")
