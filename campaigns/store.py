"""Database work of the dialer: claim due leads, record attempts and outcomes.

Synchronous SQLAlchemy; the dialer calls these through `asyncio.to_thread`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.vocab import Disposition, Grade, Outcome
from models import (
    CallAttempt,
    Campaign,
    DncEntry,
    Lead,
    LeadStatus,
    OutboxItem,
    OutboxKind,
    Turn,
)

from .compliance import CallingWindow

DUE_STATUSES = (LeadStatus.NEW, LeadStatus.RETRY, LeadStatus.CALLBACK)
LEASE = timedelta(minutes=10)
DEFAULT_RETRY = timedelta(hours=2)
RETRY_AFTER: dict[str, timedelta] = {  # dispositions that leave the lead for another try
    Disposition.BUSY: timedelta(minutes=30),
    Disposition.NO_ANSWER: timedelta(hours=2),
    Disposition.REJECTED: timedelta(hours=4),
    Disposition.FAILED: timedelta(minutes=15),
    Disposition.WORKER_LOST: timedelta(minutes=5),
}
# outcomes that settle the lead; any other (voicemail, no response, hung up) retries it
OUTCOME_STATUS: dict[str, LeadStatus] = {
    Outcome.QUALIFIED: LeadStatus.QUALIFIED,
    Outcome.CALLBACK: LeadStatus.CALLBACK,
    Outcome.DNC: LeadStatus.DNC,
    Outcome.NOT_INTERESTED: LeadStatus.NOT_INTERESTED,
    Outcome.WRONG_PERSON: LeadStatus.DONE,
    Outcome.HUMAN_REQUESTED: LeadStatus.CALLBACK,
}
DEFAULT_GRADE = Grade.B  # a qualified lead whose script named no grade


@dataclass(frozen=True, slots=True)
class ClaimedLead:
    """A lead this node has claimed (status calling, leased, its attempt counted)."""

    lead_id: int
    campaign_id: int
    phone: str
    timezone: str
    attempt_no: int  # the lead's attempts including this one
    prior_status: LeadStatus  # the status the claim replaced: `release_claim` restores it


def claim_due_leads(
    db: sessionmaker[Session],
    campaign_id: int,
    *,
    limit: int,
    now: datetime,
    node: str,
    window: CallingWindow,
    max_attempts: int,
) -> list[ClaimedLead]:
    """Claim up to `limit` leads that may be dialed now (leases, SKIP LOCKED on PostgreSQL)."""
    if limit <= 0:
        return []
    with db.begin() as s:
        camp = s.get(Campaign, campaign_id)
        if camp is None:
            raise LookupError(f"campaign {campaign_id} does not exist")
        dnc = select(DncEntry.phone)
        q = (
            select(Lead)
            .where(
                Lead.campaign_id == campaign_id,
                Lead.status.in_([str(x) for x in DUE_STATUSES])
                | ((Lead.status == LeadStatus.CALLING) & (Lead.claimed_until < now)),
                (Lead.next_attempt_at.is_(None)) | (Lead.next_attempt_at <= now),
                Lead.attempts < max_attempts,
                Lead.phone.not_in(dnc),
            )
            .order_by(Lead.next_attempt_at.is_not(None), Lead.next_attempt_at, Lead.id)
            .limit(limit * 4)
            .with_for_update(skip_locked=True)
        )
        out: list[ClaimedLead] = []
        for lead in s.scalars(q):
            tz = lead.timezone or camp.timezone
            if not window.allows(now, tz):
                continue
            prior = LeadStatus(lead.status)
            lead.status = LeadStatus.CALLING
            lead.claimed_by, lead.claimed_until = node, now + LEASE
            lead.attempts += 1
            out.append(ClaimedLead(lead.id, campaign_id, lead.phone, tz, lead.attempts, prior))
            if len(out) == limit:
                break
        return out


def release_claim(db: sessionmaker[Session], lead: ClaimedLead, *, node: str) -> bool:
    """Undo a claim that placed no call (the telephony had no free slot after all).

    Nothing was dialed, so nothing is recorded: no CallAttempt row, the attempt count back to
    what it was, the lease cleared, the status restored (a lead claimed from an expired lease
    goes back as `retry`, since a `calling` lead without a lease would never be due). The
    lead is due again at once. False if the claim is no longer this node's to release.
    """
    with db.begin() as s:
        row = s.get(Lead, lead.lead_id)
        if row is None or row.status != LeadStatus.CALLING or row.claimed_by != node:
            return False
        due_again = lead.prior_status in DUE_STATUSES
        row.status = lead.prior_status if due_again else LeadStatus.RETRY
        row.attempts = lead.attempt_no - 1
        row.claimed_by = row.claimed_until = None
        return True


def is_dnc(db: sessionmaker[Session], phone: str) -> bool:
    with db() as s:
        return s.get(DncEntry, phone) is not None


@dataclass(slots=True)
class AttemptRecord:
    """Everything one attempt produced, written in one transaction."""

    lead: ClaimedLead
    node: str
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime
    disposition: Disposition
    sip_code: int | None
    sip_reason: str | None
    hangup_by: str | None
    outcome: Outcome | None
    grade: Grade | None
    final_state: str | None
    slots: dict[str, Any]
    turns: list[dict[str, Any]]


def record_attempt(
    db: sessionmaker[Session], rec: AttemptRecord, *, max_attempts: int, default_callback: datetime
) -> int:
    """Store the attempt, its turns and the lead's new status; returns the attempt id."""
    with db.begin() as s:
        att = CallAttempt(
            lead_id=rec.lead.lead_id,
            campaign_id=rec.lead.campaign_id,
            node=rec.node,
            started_at=rec.started_at,
            answered_at=rec.answered_at,
            ended_at=rec.ended_at,
            disposition=rec.disposition,
            sip_code=rec.sip_code,
            sip_reason=rec.sip_reason,
            hangup_by=rec.hangup_by,
            outcome=rec.outcome,
            final_state=rec.final_state,
            duration_s=(rec.ended_at - (rec.answered_at or rec.ended_at)).total_seconds(),
        )
        s.add(att)
        s.flush()
        for i, t in enumerate(rec.turns):
            s.add(Turn(attempt_id=att.id, seq=i, **t))
        lead = s.get(Lead, rec.lead.lead_id)
        assert lead is not None
        _update_lead(s, lead, rec, att.id, max_attempts, default_callback)
        return att.id


def _update_lead(
    s: Session,
    lead: Lead,
    rec: AttemptRecord,
    attempt_id: int,
    max_attempts: int,
    default_callback: datetime,
) -> None:
    lead.claimed_by = lead.claimed_until = None
    status = OUTCOME_STATUS.get(rec.outcome or "")
    if status is None:  # unanswered, voicemail, no response, hung up: try again later
        delay = RETRY_AFTER.get(rec.disposition, DEFAULT_RETRY)
        exhausted = lead.attempts >= max_attempts
        lead.status = LeadStatus.DONE if exhausted else LeadStatus.RETRY
        lead.next_attempt_at = None if exhausted else rec.ended_at + delay
        return
    lead.status = status
    lead.next_attempt_at = None
    if status is LeadStatus.CALLBACK:
        when = rec.slots.get("callback_at")
        lead.callback_at = (
            datetime.fromisoformat(when) if isinstance(when, str) else default_callback
        )
        lead.next_attempt_at = lead.callback_at
        lead.attempts = max(0, lead.attempts - 1)  # a requested callback is not a failed try
    elif status is LeadStatus.DNC:
        if s.get(DncEntry, lead.phone) is None:
            s.add(DncEntry(phone=lead.phone, source="callee"))
    elif status is LeadStatus.QUALIFIED:
        lead.grade = rec.grade or DEFAULT_GRADE
        s.add(
            OutboxItem(
                kind=OutboxKind.LEAD_QUALIFIED,
                lead_id=lead.id,
                payload={"lead_id": lead.id, "attempt_id": attempt_id, "grade": lead.grade},
            )
        )
