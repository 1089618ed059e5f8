"""HubSpot adapter (CRM API v3): the lead as a contact, the call as a note on it.

Per delivery, with ``Authorization: Bearer <crm.token>`` (a private app's access token):

1. ``POST /crm/v3/objects/contacts/search``: the contact whose ``crm.unique_property``
   (default ``phone``) equals the lead's value, ``filterGroups`` with one ``EQ`` filter;
2. found: ``PATCH /crm/v3/objects/contacts/{id}`` with the properties; not found:
   ``POST /crm/v3/objects/contacts``; either way ``{"properties": {...}}``;
3. ``POST /crm/v3/objects/notes``: ``hs_timestamp`` (the call's start), ``hs_note_body`` (grade,
   summary, slots, links), associated with the contact (``HUBSPOT_DEFINED`` type 202, note
   to contact).

Only HubSpot's default contact properties are set (firstname, phone, company, city, and the
unique property): a property the portal lacks would fail the request; everything else goes in
the note. The contact step is idempotent (search, then create or update); a retry after HubSpot
accepted the note but its answer was lost adds the note again (its body names the idempotency
key, so a duplicate can be told apart).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from . import http
from .base import CrmError

DEFAULT_BASE_URL = "https://api.hubapi.com"
NOTE_TO_CONTACT = 202  # HubSpot-defined association type: note -> contact


def contact_properties(payload: dict[str, Any], unique_property: str) -> dict[str, str]:
    """The contact's properties from the payload's lead (empty values left out)."""
    lead = payload.get("lead") or {}
    props = {
        "firstname": lead.get("name"),
        "phone": lead.get("phone"),
        "company": lead.get("company"),
        "city": lead.get("city"),
    }
    if unique_property not in props:
        props[unique_property] = (lead.get("extra") or {}).get(unique_property)
    return {k: str(v) for k, v in props.items() if v not in (None, "")}


def note_body(payload: dict[str, Any]) -> str:
    """The note's text: what a salesperson reads before calling back."""
    links = payload.get("links") or {}
    slots = payload.get("slots") or {}
    lines = [
        f"AI外呼合格线索 Qualified by the call robot · 等级 Grade {payload.get('grade') or '-'}",
        f"摘要 Summary: {payload.get('summary') or '-'}",
        *(f"{k}: {v}" for k, v in slots.items()),
        *(f"{k}: {v}" for k, v in links.items() if v),
        f"ref: {payload.get('idempotency_key')}",
    ]
    return "\n".join(lines)


def _timestamp(payload: dict[str, Any]) -> str:
    call = payload.get("call") or {}
    return str(call.get("started_at") or datetime.now(UTC).isoformat())


class HubSpotCrm:
    name = "hubspot"

    def __init__(
        self,
        token: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        unique_property: str = "phone",
        timeout_s: float = 10.0,
        allow_insecure_http: bool = False,
    ) -> None:
        if not token:
            raise http.CrmConfigError("crm.engine is hubspot but crm.token is empty")
        url = http.check_url(
            base_url or DEFAULT_BASE_URL,
            "crm.base_url",
            secret=True,
            allow_insecure_http=allow_insecure_http,
        )
        self._base, self._token, self._timeout = url.rstrip("/"), token, timeout_s
        self._unique = unique_property or "phone"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    async def deliver(self, kind: str, payload: dict[str, Any]) -> None:
        props = contact_properties(payload, self._unique)
        key = props.get(self._unique)
        if not key:
            raise CrmError(f"lead has no {self._unique!r} to find its contact by", retryable=False)
        async with http.client(self._timeout) as client:
            contact_id = await self._upsert_contact(client, props, key)
            note = {
                "properties": {
                    "hs_timestamp": _timestamp(payload),
                    "hs_note_body": note_body(payload),
                },
                "associations": [
                    {
                        "to": {"id": contact_id},
                        "types": [
                            {
                                "associationCategory": "HUBSPOT_DEFINED",
                                "associationTypeId": NOTE_TO_CONTACT,
                            }
                        ],
                    }
                ],
            }
            await self._send(client, "POST", "/crm/v3/objects/notes", note)

    async def _upsert_contact(self, client: Any, props: dict[str, str], key: str) -> str:
        query = {
            "filterGroups": [
                {"filters": [{"propertyName": self._unique, "operator": "EQ", "value": key}]}
            ],
            "properties": [self._unique],
            "limit": 1,
        }
        found = (await self._send(client, "POST", "/crm/v3/objects/contacts/search", query)).get(
            "results"
        ) or []
        if found:
            contact_id = str(found[0]["id"])
            await self._send(
                client, "PATCH", f"/crm/v3/objects/contacts/{contact_id}", {"properties": props}
            )
            return contact_id
        made = await self._send(client, "POST", "/crm/v3/objects/contacts", {"properties": props})
        if "id" not in made:
            raise CrmError("HubSpot created a contact but named no id")
        return str(made["id"])

    async def _send(self, client: Any, method: str, path: str, data: Any) -> dict[str, Any]:
        resp = await http.send(
            client, method, self._base + path, body=http.json_body(data), headers=self._headers()
        )
        return http.answer_json(resp)
