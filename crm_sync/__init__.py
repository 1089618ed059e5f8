"""CRM sync: the outbox worker, the payload a salesperson gets, dead letters, and the CRM
adapters (webhook, HubSpot, Salesforce)."""

from .base import CrmAdapter, CrmError
from .factory import make_api_crm
from .outbox import deliver_pending

__all__ = ["CrmAdapter", "CrmError", "deliver_pending", "make_api_crm"]
