"""The system of record: campaigns, leads, call attempts, turns, do-not-call list, CRM outbox.

Deployments keep their database across upgrades, so these tables change only together with a
migration in `models/migrations/versions/` (tests/test_models_migrations.py compares the two).
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

OUTBOX_MAX_TRIES = 8
"""An outbox row tried this many times (or failed for good) is never retried: "failed"."""


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, datetime: DateTime(timezone=True)}


class LeadStatus(enum.StrEnum):
    NEW = "new"  # never dialed
    CALLING = "calling"  # claimed by a dialer
    RETRY = "retry"  # no answer / busy / failed: dial again later
    CALLBACK = "callback"  # the callee asked to be called at callback_at
    QUALIFIED = "qualified"  # interested: graded and pushed to the CRM
    NOT_INTERESTED = "not_interested"
    DNC = "dnc"  # asked not to be called again: never dialed again
    DONE = "done"  # attempts exhausted or nothing more to do


class CampaignStatus(enum.StrEnum):
    """A campaign's lifecycle: draft -> running <-> paused -> completed.

    Only a running campaign is dialled. ``active`` is the name `running` had before migration
    0004 (which renames stored rows); it is still read as running."""

    DRAFT = "draft"  # set up (leads imported), not dialled yet
    RUNNING = "running"  # dialled
    PAUSED = "paused"  # no new calls; calls in progress finish; resumable
    COMPLETED = "completed"  # nothing left to dial; never dialled again
    ACTIVE = "active"  # legacy name of RUNNING


DIALABLE = (CampaignStatus.RUNNING, CampaignStatus.ACTIVE)
"""The campaign statuses the dialer claims leads of."""


class OutboxKind(enum.StrEnum):
    """What an outbox row asks the CRM to do (the adapter's `kind`)."""

    LEAD_QUALIFIED = "lead.qualified"  # payload: lead_id, attempt_id, grade


class Campaign(Base):
    __tablename__ = "campaign"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    script: Mapped[str] = mapped_column(String(500))
    # a CampaignStatus; a row made without one is running (as every campaign was before 0004)
    status: Mapped[str] = mapped_column(String(20), default=CampaignStatus.RUNNING)
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    # the campaign's own calling window (campaigns.compliance syntax); NULL: the node's
    calling_hours: Mapped[str | None] = mapped_column(String(200))
    calling_days: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # the script version it dials with (models.scriptversions); NULL: none pinned yet
    script_version_id: Mapped[int | None] = mapped_column(Integer)

    leads: Mapped[list[Lead]] = relationship(back_populates="campaign")


class Lead(Base):
    __tablename__ = "lead"
    __table_args__ = (
        Index("ix_lead_due", "campaign_id", "status", "next_attempt_at"),
        # one lead per number and campaign: concurrent imports cannot store a phone twice
        Index("uq_lead_campaign_phone", "campaign_id", "phone", unique=True),
        # frequency caps count a number's attempts across campaigns
        Index("ix_lead_phone", "phone"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"))
    phone: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200), default="")
    timezone: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default=LeadStatus.NEW)
    grade: Mapped[str | None] = mapped_column(String(2))  # core.vocab.Grade, qualified leads
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    callback_at: Mapped[datetime | None] = mapped_column()
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None] = mapped_column()
    claimed_at: Mapped[datetime | None] = mapped_column()  # when the current claim was taken
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # what the calls heard, remembered across attempts (callflow.memory: budget, team_size,
    # wechat, ...; the latest value wins); NULL: nothing yet (or leads from before 0010)
    slots: Mapped[dict[str, Any] | None] = mapped_column()
    # where the lead came from (a list's name, a web form) and whether it consented to calls;
    # NULL: not recorded (leads imported before migration 0004, or files without the column)
    source: Mapped[str | None] = mapped_column(String(200))
    consent: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    campaign: Mapped[Campaign] = relationship(back_populates="leads")
    attempts_list: Mapped[list[CallAttempt]] = relationship(back_populates="lead")


class CallAttempt(Base):
    __tablename__ = "call_attempt"

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("lead.id"), index=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"), index=True)
    node: Mapped[str] = mapped_column(String(64), default="")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column()
    # how the line ended: a core.vocab.Disposition (completed, busy, no_answer, ...)
    disposition: Mapped[str | None] = mapped_column(String(20))
    sip_code: Mapped[int | None] = mapped_column(Integer)
    sip_reason: Mapped[str | None] = mapped_column(String(200))
    hangup_by: Mapped[str | None] = mapped_column(String(10))
    # what the conversation achieved: a core.vocab.Outcome (qualified, callback, dnc, ...)
    outcome: Mapped[str | None] = mapped_column(String(30))
    final_state: Mapped[str | None] = mapped_column(String(60))
    duration_s: Mapped[float | None] = mapped_column(Float)
    # the folder of the call's recording (callee.wav, robot.wav); NULL: none (or swept)
    recording_path: Mapped[str | None] = mapped_column(String(500))
    # a transfer to a person: a core.vocab.TransferMode, and whether the agent answered
    transfer_mode: Mapped[str | None] = mapped_column(String(10))
    agent_answered: Mapped[bool | None] = mapped_column()
    # the conversation's memory at its end (callflow.memory) and the mood scores of each callee
    # turn ([{"interest", "hesitation", "annoyance"}, ...]); NULL: before 0010, or unanswered
    slots: Mapped[dict[str, Any] | None] = mapped_column()
    scores: Mapped[list[dict[str, float]] | None] = mapped_column(JSON)

    lead: Mapped[Lead] = relationship(back_populates="attempts_list")
    turns: Mapped[list[Turn]] = relationship(back_populates="attempt", order_by="Turn.seq")


class Turn(Base):
    __tablename__ = "turn"

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("call_attempt.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    speaker: Mapped[str] = mapped_column(String(10))  # robot | callee
    text: Mapped[str] = mapped_column(Text, default="")
    intent: Mapped[str | None] = mapped_column(String(40))
    confidence: Mapped[float | None] = mapped_column(Float)
    # callee turns: end of speech -> first reply audio queued (ms); robot turns: None
    latency_ms: Mapped[float | None] = mapped_column(Float)
    interrupted: Mapped[bool | None] = mapped_column()
    at: Mapped[datetime] = mapped_column(default=utcnow)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)

    attempt: Mapped[CallAttempt] = relationship(back_populates="turns")


class DncEntry(Base):
    """The global do-not-call list: numbers no campaign may dial (callee opt-out, imported
    lists). A number is stored in the form leads store it, so the two compare equal."""

    __tablename__ = "dnc"

    phone: Mapped[str] = mapped_column(String(32), primary_key=True)
    source: Mapped[str] = mapped_column(String(40), default="callee")
    added_at: Mapped[datetime] = mapped_column(default=utcnow)


class CampaignDncEntry(Base):
    """One campaign's do-not-call list: numbers that campaign may not dial (others may).

    Its own table rather than a nullable campaign id on `dnc`: the global list keeps the phone
    as its key, and the (campaign, phone) key is unique without the NULL caveats of a unique
    index over a nullable column."""

    __tablename__ = "dnc_campaign"
    __table_args__ = (PrimaryKeyConstraint("campaign_id", "phone"),)

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"))
    phone: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(40), default="import")
    added_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxItem(Base):
    """Must-deliver messages for the CRM, written in the same transaction as the outcome.

    Pending while `sent_at` and `dead_at` are NULL; due when `next_try_at` is NULL (never
    tried) or has passed. A row that failed `crm.max_tries` times (or for good) gets `dead_at`:
    a dead letter, replayed by `main.py crm replay`. `created_at` stays the time the row was
    written.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "sent_at", "next_try_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("lead.id"))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column()
    tries: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_try_at: Mapped[datetime | None] = mapped_column()  # set by a failed try's backoff
    # a dead letter since then: never retried until `main.py crm replay` clears it
    dead_at: Mapped[datetime | None] = mapped_column()
    # the node delivering the row, until when (crm_sync.outbox: one node per row at a time)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None] = mapped_column()
