"""SQLAlchemy data model: the system of record."""

from .db import DatabaseInUseError, init_db, make_engine, single_writer, upgrade, write_transaction
from .scriptversions import ScriptVersion
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
from .users import ApiToken, Role, User

__all__ = [
    "DIALABLE",
    "ApiToken",
    "Role",
    "ScriptVersion",
    "User",
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
