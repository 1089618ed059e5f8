"""Database work of the dialer: claim due leads, record attempts and outcomes.

Synchronous SQLAlchemy; the dialer calls these through `asyncio.to_thread`.

A claim is atomic on every supported database: on SQLite its transaction takes the write lock
before it reads (`models.write_transaction`), on PostgreSQL the chosen rows are locked with
FOR UPDATE SKIP LOCKED; and the UPDATE that claims them repeats the due conditions, so a lead
is never claimed by two nodes, and its attempt count is exactly its claims.

Only a running campaign is claimed from (`models.DIALABLE`): the claim reads the campaign's
status in its transaction, so a pause stops claims at once. Leads are chosen among all due
leads whose calling window is open (the campaign's own hours and days, else the node's), in
SQL: the distinct timezones of the campaign's due leads are checked against the window, and
only leads in an open one are picked, so closed leads ahead in the queue never starve open
ones. In the same query a lead is left out when its number is on the global or the
campaign's do-not-call list, or when the number has had its frequency cap of calls today or
this week in the lead's local time, counted over every campaign (its `call_attempt` rows and
its claims in progress).

A claim whose lease expired (its node died mid-call) goes into the retry policy when its
campaign is next claimed: the lost attempt is recorded (disposition `worker_lost`, final state
`lease_expired`) and the lead is due again, or `done` if that was its last allowed attempt.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, text, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from core.vocab import Disposition, Grade, Outcome
from models import (
    DIALABLE,
    CallAttempt,
    Campaign,
    DncEntry,
    Lead,
    LeadStatus,
    OutboxItem,
    OutboxKind,
    Turn,
    write_transaction,
)

from . import dnc
from .compliance import CallingWindow, FrequencyCap
from .retry import DEFAULT as DEFAULT_RETRY_POLICY
from .retry import RetryPolicy

log = logging.getLogger(__name__)

DUE_STATUSES = (LeadStatus.NEW, LeadStatus.RETRY, LeadStatus.CALLBACK)
LEASE = timedelta(minutes=10)
# outcomes that settle the lead; any other (voicemail, no response, hung up) retries it
OUTCOME_STATUS: dict[str, LeadStatus] = {
    Outcome.QUALIFIED: LeadStatus.QUALIFIED,
    Outcome.CALLBACK: LeadStatus.CALLBACK,
    Outcome.DNC: LeadStatus.DNC,
    Outcome.NOT_INTERESTED: LeadStatus.NOT_INTERESTED,
    Outcome.WRONG_PERSON: LeadStatus.DONE,
    Outcome.HUMAN_REQUESTED: LeadStatus.CALLBACK,
    Outcome.TRANSFERRED: LeadStatus.DONE,  # a person has the lead now
}
DEFAULT_GRADE = Grade.B  # a qualified lead whose script named no grade
LEASE_EXPIRED = "lease_expired"  # final state of an attempt whose node never reported back
_PG_NUMBER_LOCKS = 0x6E756D  # advisory lock space of the per-number claim locks (PostgreSQL)


class ClaimLost(Exception):
    """The lead is no longer this node's claim (its lease expired and was settled as a lost
    attempt, and perhaps claimed again): what this node has of the call is not stored."""


@dataclass(frozen=True, slots=True)
class ClaimedLead:
    """A lead this node has claimed (status calling, leased, its attempt counted)."""

    lead_id: int
    campaign_id: int
    phone: str
    timezone: str
    attempt_no: int  # the lead's attempts including this one
    prior_status: LeadStatus  # the status the claim replaced: `release_claim` restores it
    # what a script's personal lines may say (callflow.personal): PII, never logged
    name: str = field(default="", repr=False)
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)
    claimed_at: datetime | None = None  # the claim's `lead.claimed_at`: which claim it is


def claim_due_leads(
    db: sessionmaker[Session],
    campaign_id: int,
    *,
    limit: int,
    now: datetime,
    node: str,
    window: CallingWindow,
    max_attempts: int,
    caps: FrequencyCap | None = None,
    lease: timedelta = LEASE,
    exclude: Collection[int] = (),
) -> list[ClaimedLead]:
    """Claim up to `limit` leads that may be dialed now: status calling, leased to `node`
    for `lease` (the node renews it while the call lasts: `renew_leases`), their attempt
    counted. Expired leases of the campaign are settled first. Nothing is claimed unless the
    campaign is running. `window`: the node's calling window (the campaign's own hours and
    days replace its); `caps`: per-number limits (None: none); `exclude`: leads the caller
    still holds an attempt of (a lease it lost, its call not yet over): never claimed again
    by it meanwhile."""
    if limit <= 0:
        return []
    with db.begin() as s:
        write_transaction(s)
        camp = s.get(Campaign, campaign_id)
        if camp is None:
            raise LookupError(f"campaign {campaign_id} does not exist")
        _settle_expired_leases(s, campaign_id, now=now, max_attempts=max_attempts)
        if camp.status not in DIALABLE:
            return []
        window = window.override(camp.calling_hours, camp.calling_days)
        due = _due(campaign_id, now=now, max_attempts=max_attempts)
        if exclude:
            due.append(Lead.id.not_in(list(exclude)))
        tz = func.coalesce(Lead.timezone, camp.timezone)
        zones = _open_zones(s, due, tz, window, now)
        if not zones:
            return []
        allowed = _under_caps(tz, zones, caps, now) if caps and caps.active else tz.in_(zones)
        due.append(allowed)
        picked = s.execute(
            select(Lead.id, Lead.phone, Lead.status, tz.label("tz"), Lead.name, Lead.extra)
            .where(*due)
            .order_by(Lead.next_attempt_at.is_not(None), Lead.next_attempt_at, Lead.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        if not picked:
            return []
        if caps and caps.active:
            _serialise_numbers(s, [row.phone for row in picked])
        claimed = s.execute(
            update(Lead)
            .where(Lead.id.in_([row.id for row in picked]), *due)  # still due: or not ours
            .values(
                status=LeadStatus.CALLING,
                claimed_by=node,
                claimed_until=now + lease,
                claimed_at=now,
                attempts=Lead.attempts + 1,
            )
            .returning(Lead.id, Lead.attempts),
            execution_options={"synchronize_session": False},
        ).all()
        attempt_no = {row.id: row.attempts for row in claimed}
        return [
            ClaimedLead(
                row.id,
                campaign_id,
                row.phone,
                row.tz,
                attempt_no[row.id],
                LeadStatus(row.status),
                name=row.name or "",
                extra=dict(row.extra or {}),
                claimed_at=now,
            )
            for row in picked
            if row.id in attempt_no
        ]


def _serialise_numbers(s: Session, phones: list[str]) -> None:
    """On PostgreSQL, take a transaction lock per number about to be claimed (in one order,
    so two claims never wait on each other in a cycle). A claim of the same number by
    another node, in another campaign, waits for this transaction; its UPDATE then reads our
    committed claim and counts it against the number's frequency caps. (SQLite: the write
    lock already serialises every claim.)"""
    if s.get_bind().dialect.name != "postgresql":
        return
    for phone in sorted(set(phones)):
        s.execute(
            text("SELECT pg_advisory_xact_lock(:space, hashtext(:phone))"),
            {"space": _PG_NUMBER_LOCKS, "phone": phone},
        )


def _due(campaign_id: int, *, now: datetime, max_attempts: int) -> list[ColumnElement[bool]]:
    """The conditions of a lead of the campaign that may be claimed now (window aside)."""
    return [
        Lead.campaign_id == campaign_id,
        Lead.status.in_([str(x) for x in DUE_STATUSES]),
        Lead.next_attempt_at.is_(None) | (Lead.next_attempt_at <= now),
        Lead.attempts < max_attempts,
        *dnc.not_listed(campaign_id),
    ]


def _under_caps(
    tz: ColumnElement[str], zones: list[str], caps: FrequencyCap, now: datetime
) -> ColumnElement[bool]:
    """Leads in an open zone whose number is under its caps in the zone's day and week:
    attempts stored since the local day's (week's) start, plus claims in progress, over every
    campaign."""
    other = aliased(Lead)
    in_flight = (
        select(func.count(other.id))
        .where(other.phone == Lead.phone, other.status == LeadStatus.CALLING)
        .scalar_subquery()
    )

    def calls_since(start: datetime) -> ColumnElement[int]:
        stored = (
            select(func.count(CallAttempt.id))
            .join(other, CallAttempt.lead_id == other.id)
            .where(other.phone == Lead.phone, CallAttempt.started_at >= start)
            .scalar_subquery()
        )
        return stored + in_flight

    per_zone = []
    for name in zones:
        day, week = FrequencyCap.day_and_week_start(now, name)
        limits = [tz == name]
        if caps.per_day:
            limits.append(calls_since(day) < caps.per_day)
        if caps.per_week:
            limits.append(calls_since(week) < caps.per_week)
        per_zone.append(and_(*limits))
    return or_(*per_zone)


def _open_zones(
    s: Session,
    due: Sequence[ColumnElement[bool]],
    tz: ColumnElement[str],
    window: CallingWindow,
    now: datetime,
) -> list[str]:
    """The timezones of due leads whose calling window is open now (an unknown one: never)."""
    zones: list[str] = []
    for name in s.scalars(select(tz).where(*due).distinct()):
        try:
            if window.allows(now, name):
                zones.append(name)
        except ValueError:
            log.warning("leads with an unknown timezone are not dialled", extra={"tz": name})
    return zones


def settle_expired_leases(db: sessionmaker[Session], *, now: datetime, max_attempts: int) -> None:
    """Settle the expired leases of every campaign, paused ones included (the node runs this
    every poll, so a lead whose node died never stays `calling` while nobody claims). The
    write lock is taken only when a plain read finds an expired lease."""
    with db() as s:
        expired = s.scalar(select(Lead.id).where(Lead.claimed_until < now).limit(1))
    if expired is None:
        return
    with db.begin() as s:
        write_transaction(s)
        _settle_expired_leases(s, None, now=now, max_attempts=max_attempts)


def _settle_expired_leases(
    s: Session, campaign_id: int | None, *, now: datetime, max_attempts: int
) -> None:
    """Leads whose claim expired (the node died or lost them mid-call) into the retry policy,
    for one campaign or (None) all.

    The attempt the node never reported is recorded as `worker_lost` (`lease_expired`), from
    the claim to the lease's end, so attempts counted equal attempts recorded and a lead's
    attempts never overlap in time. A `calling` lead is due again at once (the lease was its
    delay) or, on its last allowed attempt, `done`: never left `calling` for good. A lead
    whose outcome was stored mid-call (`campaigns.outcomes`) keeps it.
    """
    which = [] if campaign_id is None else [Lead.campaign_id == campaign_id]
    lost = s.execute(
        select(
            Lead.id,
            Lead.campaign_id,
            Lead.status,
            Lead.attempts,
            Lead.claimed_by,
            Lead.claimed_until,
            Lead.claimed_at,
        )
        .where(*which, Lead.claimed_until < now)
        .with_for_update(skip_locked=True)
    ).all()
    for row in lost:
        if _settle_one(s, row, now=now, max_attempts=max_attempts):
            log.warning(
                "a lease expired: attempt recorded as lost",
                extra={"lead": row.id, "node": row.claimed_by},
            )


def _settle_one(s: Session, row: Any, *, now: datetime, max_attempts: int) -> bool:
    """One expired lease (`row`, locked) settled; False if it changed meanwhile."""
    values: dict[str, Any] = {"claimed_by": None, "claimed_until": None, "claimed_at": None}
    if row.status == LeadStatus.CALLING:
        last = row.attempts >= max_attempts
        values["status"] = LeadStatus.DONE if last else LeadStatus.RETRY
        values["next_attempt_at"] = None if last else row.claimed_until
    settled = s.execute(
        update(Lead)
        .where(Lead.id == row.id, Lead.claimed_until < now)
        .values(**values)
        .returning(Lead.id),
        execution_options={"synchronize_session": False},
    ).all()
    if not settled:
        return False
    s.add(
        CallAttempt(
            lead_id=row.id,
            campaign_id=row.campaign_id,
            node=row.claimed_by or "",
            started_at=row.claimed_at or row.claimed_until - LEASE,
            ended_at=row.claimed_until,
            disposition=Disposition.WORKER_LOST,
            final_state=LEASE_EXPIRED,
            duration_s=0.0,
        )
    )
    return True


def renew_leases(
    db: sessionmaker[Session],
    claims: Mapping[int, datetime | None],
    *,
    node: str,
    until: datetime,
) -> set[int]:
    """Extend `node`'s leases on `claims` (lead id -> the claim's `claimed_at`; None: any
    claim of `node`) to `until`, so a long call keeps its lead. Returns the ids that are no
    longer these claims (settled as lost, perhaps claimed again, or stored meanwhile by the
    node itself): the node must not store their attempts (`record_attempt` refuses)."""
    if not claims:
        return set()
    with db.begin() as s:
        renewed = s.execute(
            update(Lead)
            .where(
                Lead.id.in_(list(claims)),
                Lead.claimed_by == node,
                Lead.claimed_until.is_not(None),
            )
            .values(claimed_until=until)
            .returning(Lead.id, Lead.claimed_at),
            execution_options={"synchronize_session": False},
        ).all()
    still = {row.id for row in renewed if same_claim(claims[row.id], row.claimed_at)}
    return set(claims) - still


def same_claim(token: datetime | None, claimed_at: datetime | None) -> bool:
    """True when a lead's `claimed_at` is the claim `token` names (None: any claim). SQLite
    gives back naive UTC datetimes, PostgreSQL aware ones: compared as instants."""
    if token is None:
        return True
    if claimed_at is None:
        return False

    def utc(t: datetime) -> datetime:
        return t if t.tzinfo else t.replace(tzinfo=UTC)

    return utc(token) == utc(claimed_at)


def _owned(s: Session, lead_id: int, node: str, token: datetime | None = None) -> Lead | None:
    """The lead, row-locked for this transaction, if it is still `node`'s claim (the one
    taken at `token`, when given); else None. The lock orders this write after (or before) a
    concurrent settling of the lease."""
    row = s.get(Lead, lead_id, with_for_update=True)
    if row is None or row.claimed_by != node or not same_claim(token, row.claimed_at):
        return None
    return row


def release_claim(db: sessionmaker[Session], lead: ClaimedLead, *, node: str) -> bool:
    """Undo a claim that placed no call (the telephony had no free slot after all).

    Nothing was dialed, so nothing is recorded: no CallAttempt row, the attempt count back to
    what it was, the lease cleared, the status restored (a lead claimed from an expired lease
    goes back as `retry`, since a `calling` lead without a lease would never be due). The
    lead is due again at once. False if the claim is no longer this node's to release.
    """
    with db.begin() as s:
        write_transaction(s)
        row = _owned(s, lead.lead_id, node, lead.claimed_at)
        if row is None or row.status != LeadStatus.CALLING:
            return False
        due_again = lead.prior_status in DUE_STATUSES
        row.status = lead.prior_status if due_again else LeadStatus.RETRY
        row.attempts = lead.attempt_no - 1
        row.claimed_by = row.claimed_until = row.claimed_at = None
        return True


def is_dnc(db: sessionmaker[Session], phone: str, campaign_id: int | None = None) -> bool:
    """True if `phone` is on the global do-not-call list or on `campaign_id`'s."""
    with db() as s:
        return dnc.is_listed(s, phone, campaign_id)


def dial_check(db: sessionmaker[Session], lead: ClaimedLead) -> str | None:
    """Why a claimed lead may not be dialled now, read immediately before the dial: "dnc"
    (its number went on a do-not-call list since the claim), "paused" (its campaign is no
    longer running), or None: dial it."""
    with db() as s:
        if dnc.is_listed(s, lead.phone, lead.campaign_id):
            return "dnc"
        status = s.scalar(select(Campaign.status).where(Campaign.id == lead.campaign_id))
        return None if status in DIALABLE else "paused"


def campaign_dialable(db: sessionmaker[Session], campaign_id: int) -> bool:
    """True while the campaign is running (one primary-key read: the dialer asks before each
    claim, so a pause stops new calls at once)."""
    with db() as s:
        status = s.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
        return status in DIALABLE


def settle_listed_claim(db: sessionmaker[Session], lead: ClaimedLead, *, node: str) -> bool:
    """A claimed lead whose number went on a do-not-call list before the dial: never dialled,
    so no attempt is counted or recorded; the lead is settled `dnc`. False if the claim is
    no longer this node's."""
    with db.begin() as s:
        write_transaction(s)
        row = _owned(s, lead.lead_id, node, lead.claimed_at)
        if row is None or row.status != LeadStatus.CALLING:
            return False
        row.status = LeadStatus.DNC
        row.attempts = lead.attempt_no - 1
        row.next_attempt_at = None
        row.claimed_by = row.claimed_until = row.claimed_at = None
        return True


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
    recording_path: str | None = None  # the call's recording folder (callee.wav, robot.wav)
    transfer_mode: str | None = None  # a core.vocab.TransferMode, when a transfer was tried
    agent_answered: bool | None = None  # whether the agent answered that transfer
    scores: list[dict[str, float]] = field(default_factory=list)  # mood scores per callee turn


def record_attempt(
    db: sessionmaker[Session],
    rec: AttemptRecord,
    *,
    max_attempts: int,
    default_callback: datetime,
    retry: RetryPolicy = DEFAULT_RETRY_POLICY,
) -> int:
    """Store the attempt, its turns and the lead's new status; returns the attempt id. An
    attempt that settles nothing is retried by `retry` (delay and tries per disposition).

    Only while the lead is still `rec.node`'s claim (read under a row lock): a node that
    stalled past its lease finds its lead settled as a lost attempt (perhaps dialled again by
    another node) and raises `ClaimLost` instead of adding a second attempt beside it. The
    do-not-call request of such a call is still kept (the callee asked)."""
    with db.begin() as s:
        write_transaction(s)
        lead = _owned(s, rec.lead.lead_id, rec.node, rec.lead.claimed_at)
        if lead is not None:
            return _store_attempt(s, lead, rec, max_attempts, default_callback, retry)
        if rec.outcome is Outcome.DNC and s.get(DncEntry, rec.lead.phone) is None:
            s.add(DncEntry(phone=rec.lead.phone, source="callee"))
    raise ClaimLost(rec.lead.lead_id)


def _store_attempt(
    s: Session,
    lead: Lead,
    rec: AttemptRecord,
    max_attempts: int,
    default_callback: datetime,
    retry: RetryPolicy,
) -> int:
    """The attempt's row and turns, and the lead's new status, in the caller's transaction."""
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
        recording_path=rec.recording_path,
        transfer_mode=rec.transfer_mode,
        agent_answered=rec.agent_answered,
        slots=rec.slots or None,
        scores=rec.scores or None,
    )
    s.add(att)
    s.flush()
    for i, t in enumerate(rec.turns):
        s.add(Turn(attempt_id=att.id, seq=i, **t))
    _update_lead(s, lead, rec, att.id, max_attempts, default_callback, retry)
    return att.id


def _update_lead(
    s: Session,
    lead: Lead,
    rec: AttemptRecord,
    attempt_id: int,
    max_attempts: int,
    default_callback: datetime,
    retry: RetryPolicy,
) -> None:
    lead.claimed_by = lead.claimed_until = lead.claimed_at = None
    if rec.slots:  # remembered across attempts: the latest value wins
        lead.slots = {**(lead.slots or {}), **rec.slots}
    status = OUTCOME_STATUS.get(rec.outcome or "")
    if status is None:  # unanswered, voicemail, no response, hung up: try again later
        delay = retry.next_try(rec.disposition, lead.attempts, max_attempts)
        lead.status = LeadStatus.DONE if delay is None else LeadStatus.RETRY
        lead.next_attempt_at = None if delay is None else rec.ended_at + delay
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
        qualified_outbox(s, lead.id, lead.grade, attempt_id)


def qualified_outbox(s: Session, lead_id: int, grade: str, attempt_id: int | None) -> None:
    """The lead's CRM outbox row, once: written early (`campaigns.outcomes`, attempt id not yet
    known) or with the attempt. The attempt's write fills in the early row's attempt id while it
    is undelivered, and adds no second row."""
    early = [
        row
        for row in s.scalars(
            select(OutboxItem).where(
                OutboxItem.lead_id == lead_id, OutboxItem.kind == OutboxKind.LEAD_QUALIFIED
            )
        )
        if row.payload.get("attempt_id") is None
    ]
    if not early:
        s.add(
            OutboxItem(
                kind=OutboxKind.LEAD_QUALIFIED,
                lead_id=lead_id,
                payload={"lead_id": lead_id, "attempt_id": attempt_id, "grade": grade},
            )
        )
        return
    for row in early:
        if attempt_id is not None and row.sent_at is None:
            row.payload = {**row.payload, "attempt_id": attempt_id, "grade": grade}
