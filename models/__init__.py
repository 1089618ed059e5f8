"""SQLAlchemy data model: the system of record."""

from .db import init_db, make_engine
from .tables import (
    Base,
    CallAttempt,
    Campaign,
    DncEntry,
    Lead,
    LeadStatus,
    OutboxItem,
    Turn,
    utcnow,
)

__all__ = [
    "Base",
    "CallAttempt",
    "Campaign",
    "DncEntry",
    "Lead",
    "LeadStatus",
    "OutboxItem",
    "Turn",
    "init_db",
    "make_engine",
    "utcnow",
]
