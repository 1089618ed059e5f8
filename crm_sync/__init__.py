"""CRM sync: the outbox worker and CRM adapters."""

from .base import CrmAdapter, CrmError
from .outbox import deliver_pending

__all__ = ["CrmAdapter", "CrmError", "deliver_pending"]
