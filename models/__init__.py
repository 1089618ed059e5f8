"""SQLAlchemy data model: the system of record."""

from .db import DatabaseInUseError, init_db, make_engine, single_writer, upgrade, write_transaction
from .tables import (
    DIALABLE,
    OUTBOX_MAX_TRIES,
    Base,
    CallAttempt,
    Campaign,
    CampaignDncEntry,
    CampaignStatus,
    DncEntry,
    Lead,
    LeadStatus,
    OutboxItem,
    OutboxKind,
    Turn,
    utcnow,
)

__all__ = [
    "DIALABLE",
    "OUTBOX_MAX_TRIES",
    "Base",
    "CallAttempt",
    "Campaign",
    "CampaignDncEntry",
    "CampaignStatus",
    "DatabaseInUseError",
    "DncEntry",
    "Lead",
    "LeadStatus",
    "OutboxItem",
    "OutboxKind",
    "Turn",
    "init_db",
    "make_engine",
    "single_writer",
    "upgrade",
    "utcnow",
    "write_transaction",
]
