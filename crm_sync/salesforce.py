"""Salesforce adapter (REST API): the qualified lead as a Salesforce Lead.

With ``Authorization: Bearer <crm.token>`` (an OAuth access token) against the org's instance
URL (``crm.base_url``, e.g. https://yourdomain.my.salesforce.com) and API version
``crm.api_version`` (default v60.0):

- ``crm.external_id_field`` set (an External ID field on Lead, e.g. ``Callbot_Lead_Id__c``):
  ``PATCH /services/data/vXX.X/sobjects/Lead/<field>/<lead id>``, an upsert: 201 created,
  200/204 updated. Idempotent: a retry updates the Lead it made;
- otherwise ``POST /services/data/vXX.X/sobjects/Lead/`` (201 created). A retry after
  Salesforce accepted the Lead but its answer was lost creates a second one: set an external
  id field to rule that out.

Fields: LastName (the lead's name; Salesforce requires one), Company (required; "[not
provided]" without one), Phone, City, Rating (grade A/B/C -> Hot/Warm/Cold), LeadSource,
Description (summary, slots, links).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from . import http

DEFAULT_API_VERSION = "v60.0"
RATING = {"A": "Hot", "B": "Warm", "C": "Cold"}
LEAD_SOURCE = "AI Outbound Call"
NOT_PROVIDED = "[not provided]"


def lead_fields(payload: dict[str, Any]) -> dict[str, Any]:
    """The Lead's fields from the payload (empty ones left out, required ones filled)."""
    lead = payload.get("lead") or {}
    slots = payload.get("slots") or {}
    links = payload.get("links") or {}
    description = "\n".join(
        [
            f"摘要 Summary: {payload.get('summary') or '-'}",
            *(f"{k}: {v}" for k, v in slots.items()),
            *(f"{k}: {v}" for k, v in links.items() if v),
            f"ref: {payload.get('idempotency_key')}",
        ]
    )
    fields = {
        "LastName": lead.get("name") or lead.get("phone") or NOT_PROVIDED,
        "Company": lead.get("company") or NOT_PROVIDED,
        "Phone": lead.get("phone"),
        "City": lead.get("city"),
        "Rating": RATING.get(str(payload.get("grade") or "").upper()),
        "LeadSource": LEAD_SOURCE,
        "Description": description[:32000],
    }
    return {k: v for k, v in fields.items() if v not in (None, "")}


class SalesforceCrm:
    name = "salesforce"

    def __init__(
        self,
        instance_url: str,
        token: str,
        *,
        api_version: str = DEFAULT_API_VERSION,
        external_id_field: str = "",
        timeout_s: float = 10.0,
        allow_insecure_http: bool = False,
    ) -> None:
        if not token:
            raise http.CrmConfigError("crm.engine is salesforce but crm.token is empty")
        if not instance_url:
            raise http.CrmConfigError("crm.engine is salesforce but crm.base_url is empty")
        url = http.check_url(
            instance_url, "crm.base_url", secret=True, allow_insecure_http=allow_insecure_http
        )
        version = api_version if api_version.startswith("v") else f"v{api_version}"
        self._leads = f"{url.rstrip('/')}/services/data/{version}/sobjects/Lead"
        self._token, self._ext, self._timeout = token, external_id_field, timeout_s

    async def deliver(self, kind: str, payload: dict[str, Any]) -> None:
        body = http.json_body(lead_fields(payload))
        headers = {"Authorization": f"Bearer {self._token}"}
        async with http.client(self._timeout) as client:
            if self._ext:
                lead_id = quote(str(payload.get("lead_id")), safe="")
                url = f"{self._leads}/{quote(self._ext, safe='')}/{lead_id}"
                await http.send(client, "PATCH", url, body=body, headers=headers)
            else:
                await http.send(client, "POST", f"{self._leads}/", body=body, headers=headers)
