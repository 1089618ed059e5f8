"""Build the HubSpot or Salesforce adapter from the ``crm:`` settings (``app.config.CrmConfig``,
read through this Protocol: crm_sync does not import app)."""

from __future__ import annotations

from typing import Protocol

from .base import CrmAdapter, CrmConfigError
from .hubspot import HubSpotCrm
from .salesforce import SalesforceCrm


class CrmSettings(Protocol):
    token: str
    base_url: str
    unique_property: str
    api_version: str
    external_id_field: str
    timeout_s: float
    allow_insecure_http: bool


def make_api_crm(engine: str, c: CrmSettings) -> CrmAdapter:
    """The adapter named `engine` ("hubspot" or "salesforce"); CrmConfigError when unusable."""
    if engine == "hubspot":
        return HubSpotCrm(
            c.token,
            base_url=c.base_url,
            unique_property=c.unique_property,
            timeout_s=c.timeout_s,
            allow_insecure_http=c.allow_insecure_http,
        )
    if engine == "salesforce":
        return SalesforceCrm(
            c.base_url,
            c.token,
            api_version=c.api_version,
            external_id_field=c.external_id_field,
            timeout_s=c.timeout_s,
            allow_insecure_http=c.allow_insecure_http,
        )
    raise CrmConfigError(f"unknown CRM API adapter {engine!r} (hubspot, salesforce)")
