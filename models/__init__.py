"""SQLAlchemy data model: the system of record."""

from .db import init_db, make_engine, upgrade
from .tables import (
    OUTBOX_MAX_TRIES,
    Base,
    CallAttempt,
    Campaign,
    DncEntry,
    Lead,
    LeadStatus,
    OutboxItem,
    OutboxKind,
    Turn,
    utcnow,
)

__all__ = [
    "OUTBOX_MAX_TRIES",
    "Base",
    "CallAttempt",
    "Campaign",
    "DncEntry",
    "Lead",
    "LeadStatus",
    "OutboxItem",
    "OutboxKind",
    "Turn",
    "init_db",
    "make_engine",
    "upgrade",
    "utcnow",
]
