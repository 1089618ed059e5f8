"""What a salesperson gets for a qualified lead: built at delivery time from the database, so
the outbox row itself holds only ids (no PII is copied into it).

The payload (JSON; the webhook sends it as it is, HubSpot and Salesforce map it to their
fields)::

    {"kind": "lead.qualified", "outbox_id": 7, "idempotency_key": "callbot-outbox-7",
     "lead_id": 3, "attempt_id": 12, "grade": "A",
     "lead": {"id": 3, "name": "王小明", "phone": "+8613800001111", "company": "...",
              "city": "...", "timezone": "Asia/Shanghai", "source": "...", "campaign": "...",
              "extra": {every other column of the lead file}},
     "call": {"started_at": ISO, "answered_at": ISO, "duration_s": 95.0, "outcome": "qualified"},
     "slots": {"time": "明天下午", "callback_at": ISO, "wechat": "...", "budget": ...,
               "team_size": 20, "decision_maker": true, "objections": [...]},
     "intents": ["affirm", "ask_price", "book_meeting"],
     "summary": "有兴趣；询价；约演示：明天下午",
     "links": {"call": URL, "transcript": URL, "recording": URL or null}}

Links are ``crm.console_url`` + ``/calls/<attempt_id>`` (the console's call page: transcript
and player) and ``/calls/<attempt_id>/recording``; null without a console URL, an attempt, or
(recording) a recording.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import CallAttempt, Campaign, Lead, OutboxItem, Turn

from .summary import intents_in_order, merged_slots, summarize

# lead-file columns read as the company and the city (Lead.extra keys, compared lower-cased)
COMPANY_KEYS = ("company", "company_name", "公司", "公司名称", "企业", "企业名称", "单位")
CITY_KEYS = ("city", "城市", "所在城市", "地区", "所在地")


def idempotency_key(outbox_id: int) -> str:
    """The key a CRM deduplicates deliveries on: one per outbox row, stable across retries."""
    return f"callbot-outbox-{outbox_id}"


def _pick(extra: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    lowered = {str(k).strip().lower(): v for k, v in extra.items()}
    for key in keys:
        value = lowered.get(key)
        if value not in (None, ""):
            return str(value)
    return None


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def _lead(s: Session, lead: Lead) -> dict[str, Any]:
    extra = dict(lead.extra or {})
    return {
        "id": lead.id,
        "name": lead.name or None,
        "phone": lead.phone,  # E.164: campaigns.phones normalises every imported number
        "company": _pick(extra, COMPANY_KEYS),
        "city": _pick(extra, CITY_KEYS),
        "timezone": lead.timezone,
        "source": lead.source,
        "campaign": s.scalar(select(Campaign.name).where(Campaign.id == lead.campaign_id)),
        "extra": extra,
    }


def _attempt(s: Session, lead_id: int, attempt_id: Any) -> CallAttempt | None:
    if isinstance(attempt_id, int) and not isinstance(attempt_id, bool):
        return s.get(CallAttempt, attempt_id)
    return s.scalar(  # an early row: the lead's latest qualified attempt, if stored by now
        select(CallAttempt)
        .where(CallAttempt.lead_id == lead_id, CallAttempt.outcome == "qualified")
        .order_by(CallAttempt.id.desc())
        .limit(1)
    )


def _slots(lead: Lead, attempt: CallAttempt | None, turns: list[Turn]) -> dict[str, Any]:
    """The conversation's memory as stored (``callflow.memory``: the lead's slots over all its
    calls, this attempt's winning); turns' slots only for rows stored before memory was."""
    stored = {**(lead.slots or {}), **((attempt.slots if attempt is not None else None) or {})}
    return stored or merged_slots(turns)


def links(console_url: str, attempt: CallAttempt | None) -> dict[str, str | None]:
    """URLs of the call's page (transcript, player) and recording in the console."""
    if not console_url or attempt is None:
        return {"call": None, "transcript": None, "recording": None}
    call = f"{console_url.rstrip('/')}/calls/{attempt.id}"
    has_recording = bool(getattr(attempt, "recording_path", None))
    return {
        "call": call,
        "transcript": call,
        "recording": f"{call}/recording" if has_recording else None,
    }


def build(s: Session, row: OutboxItem, *, console_url: str = "") -> dict[str, Any]:
    """The full payload of one outbox row (whose own payload holds ids only)."""
    stored = dict(row.payload or {})
    out: dict[str, Any] = {
        **stored,
        "kind": row.kind,
        "outbox_id": row.id,
        "idempotency_key": idempotency_key(row.id),
    }
    lead_id = row.lead_id if row.lead_id is not None else stored.get("lead_id")
    lead = s.get(Lead, lead_id) if isinstance(lead_id, int) else None
    if lead is None:
        return out
    attempt = _attempt(s, lead.id, stored.get("attempt_id"))
    turns = (
        list(s.scalars(select(Turn).where(Turn.attempt_id == attempt.id).order_by(Turn.seq)))
        if attempt is not None
        else []
    )
    out.update(
        lead_id=lead.id,
        lead=_lead(s, lead),
        attempt_id=None if attempt is None else attempt.id,
        grade=stored.get("grade") or lead.grade,
        call=None
        if attempt is None
        else {
            "started_at": _iso(attempt.started_at),
            "answered_at": _iso(attempt.answered_at),
            "duration_s": attempt.duration_s,
            "outcome": attempt.outcome,
        },
        slots=_slots(lead, attempt, turns),
        intents=intents_in_order(turns),
        summary=summarize(turns),
        links=links(console_url, attempt),
    )
    return out
