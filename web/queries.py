"""The console's reads: small queries shaped for its pages (no writes here)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from campaigns.lifecycle import state
from models import CallAttempt, Campaign, Lead, Turn

from .recording import tracks

LEADS_PAGE = 100  # leads per page of the lead search
RECENT_CALLS = 20  # calls the live page starts with


@dataclass(frozen=True, slots=True)
class CampaignRow:
    id: int
    name: str
    script: str
    state: str
    leads: int


def campaigns(db: sessionmaker[Session]) -> list[CampaignRow]:
    with db() as s:
        rows = s.execute(
            select(
                Campaign.id, Campaign.name, Campaign.script, Campaign.status, func.count(Lead.id)
            )
            .outerjoin(Lead, Lead.campaign_id == Campaign.id)
            .group_by(Campaign.id)
            .order_by(Campaign.created_at.desc(), Campaign.id.desc())
        )
        return [CampaignRow(i, n, sc, state(st), int(c)) for i, n, sc, st, c in rows]


def campaign(db: sessionmaker[Session], campaign_id: int) -> CampaignRow | None:
    return next((c for c in campaigns(db) if c.id == campaign_id), None)


def leads(
    db: sessionmaker[Session],
    *,
    q: str = "",
    status: str = "",
    grade: str = "",
    campaign_id: int | None = None,
) -> list[Lead]:
    """Leads matching a phone or name fragment, a status, a grade and a campaign, newest
    first, at most `LEADS_PAGE`."""
    where: list[Any] = []
    if q:
        like = f"%{q.replace('%', '').replace('_', '')}%"
        where.append(or_(Lead.phone.like(like), Lead.name.like(like)))
    if status:
        where.append(Lead.status == status)
    if grade:
        where.append(Lead.grade == grade)
    if campaign_id is not None:
        where.append(Lead.campaign_id == campaign_id)
    with db() as s:
        stmt = select(Lead).where(*where).order_by(Lead.id.desc()).limit(LEADS_PAGE)
        return list(s.scalars(stmt))


@dataclass(frozen=True, slots=True)
class CallDetail:
    attempt: CallAttempt
    lead: Lead
    campaign: str
    turns: list[Turn]
    recording: Path | None  # an existing file, when the attempt has one


def call_detail(db: sessionmaker[Session], attempt_id: int) -> CallDetail | None:
    with db() as s:
        attempt = s.get(CallAttempt, attempt_id)
        if attempt is None:
            return None
        turns = list(
            s.scalars(select(Turn).where(Turn.attempt_id == attempt_id).order_by(Turn.seq))
        )
        name = s.scalar(select(Campaign.name).where(Campaign.id == attempt.campaign_id)) or ""
        return CallDetail(attempt, attempt.lead, name, turns, recording_of(attempt))


def recording_of(attempt: CallAttempt) -> Path | None:
    """The attempt's recording (its folder of tracks, ``campaigns.recordings``) when one is
    on disk; None without ``recording_path`` (before migration 0005) or without tracks."""
    raw = getattr(attempt, "recording_path", None)
    if not raw:
        return None
    path = Path(raw)
    return path if tracks(path) else None


@dataclass(frozen=True, slots=True)
class RecentCall:
    attempt_id: int
    campaign_id: int
    lead_id: int
    started_at: Any
    disposition: str | None
    outcome: str | None


def recent_calls(db: sessionmaker[Session], limit: int = RECENT_CALLS) -> list[RecentCall]:
    with db() as s:
        rows = s.execute(
            select(
                CallAttempt.id,
                CallAttempt.campaign_id,
                CallAttempt.lead_id,
                CallAttempt.started_at,
                CallAttempt.disposition,
                CallAttempt.outcome,
            )
            .order_by(CallAttempt.id.desc())
            .limit(limit)
        )
        return [RecentCall(*row) for row in rows]
