"""A campaign's lifecycle: draft -> running <-> paused -> completed, and its status report.

Only a running campaign is dialled (`models.DIALABLE`; the legacy ``active`` reads as
running). `start` runs a draft (or a paused one), `pause` stops new calls (the dialer re-reads
the status before each claim and before each dial; calls in progress finish), `resume` runs a
paused one again, `complete` ends one for good. The node completes a running campaign itself
when nothing is left to dial (`complete_if_done`: no lead due now or later, none calling),
unless ``campaign.auto_complete`` is off. The report has counts only: no phone, no name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from models import DIALABLE, CallAttempt, Campaign, CampaignStatus, Lead, LeadStatus

from . import dnc
from .compliance import CallingWindow, FrequencyCap

S = CampaignStatus

# action -> (the statuses it applies to, the status it sets)
TRANSITIONS: dict[str, tuple[tuple[str, ...], CampaignStatus]] = {
    "start": ((S.DRAFT, S.PAUSED), S.RUNNING),
    "pause": ((S.RUNNING, S.ACTIVE), S.PAUSED),
    "resume": ((S.PAUSED,), S.RUNNING),
    "complete": ((S.DRAFT, S.RUNNING, S.ACTIVE, S.PAUSED), S.COMPLETED),
}


class LifecycleError(ValueError):
    """A lifecycle command that cannot apply (unknown campaign, wrong state): one line."""


def state(status: str) -> str:
    """The lifecycle state a stored status means (``active`` is running)."""
    return S.RUNNING if status == S.ACTIVE else status


def transition(
    db: sessionmaker[Session],
    name: str,
    action: str,
    *,
    hours: str | None = None,
    days: str | None = None,
) -> tuple[str, str]:
    """Apply `action` to campaign `name`: (state before, state after). `hours`/`days`: the
    campaign's own calling window, checked and stored (with `start` or `resume`)."""
    allowed, target = TRANSITIONS[action]
    if hours or days:
        CallingWindow.parse("00:00-24:00").override(hours, days)  # ValueError when malformed
    with db.begin() as s:
        camp = s.scalar(select(Campaign).where(Campaign.name == name).with_for_update())
        if camp is None:
            raise LifecycleError(f"no campaign named {name!r}")
        before = state(camp.status)
        if camp.status not in allowed:
            if state(camp.status) == target:
                return before, before  # already there: nothing to do
            raise LifecycleError(f"campaign {name!r} is {before}: cannot {action} it")
        camp.status = target
        if hours:
            camp.calling_hours = hours
        if days:
            camp.calling_days = days
        return before, str(target)


def _remaining(s: Session, campaign_id: int, max_attempts: int) -> tuple[int, int]:
    """(leads that may still be dialled, now or later; leads being called now)."""
    to_dial = s.scalar(
        select(func.count(Lead.id)).where(
            Lead.campaign_id == campaign_id,
            Lead.status.in_([LeadStatus.NEW, LeadStatus.RETRY, LeadStatus.CALLBACK]),
            Lead.attempts < max_attempts,
            *dnc.not_listed(campaign_id),
        )
    )
    calling = s.scalar(
        select(func.count(Lead.id)).where(
            Lead.campaign_id == campaign_id, Lead.status == LeadStatus.CALLING
        )
    )
    return int(to_dial or 0), int(calling or 0)


def complete_if_done(db: sessionmaker[Session], campaign_id: int, *, max_attempts: int) -> bool:
    """Mark a running campaign completed when no lead is left to dial and none is being
    called; True if it was."""
    with db.begin() as s:
        camp = s.get(Campaign, campaign_id)
        if camp is None or camp.status not in DIALABLE:
            return False
        if _remaining(s, campaign_id, max_attempts) != (0, 0):
            return False
        camp.status = S.COMPLETED
        return True


@dataclass(frozen=True, slots=True)
class CampaignStatusReport:
    """What `main.py campaign status` prints: counts only."""

    name: str
    state: str
    leads: dict[str, int]  # by lead status
    attempts_today: int  # attempts started since local midnight in `tz`
    left_to_dial: int
    calling: int
    calling_hours: str | None  # the campaign's own window, None: the node's
    calling_days: str | None

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "state": self.state,
            "leads": self.leads,
            "attempts_today": self.attempts_today,
            "left_to_dial": self.left_to_dial,
            "calling": self.calling,
            "calling_hours": self.calling_hours,
            "calling_days": self.calling_days,
        }


def status_report(
    db: sessionmaker[Session], name: str, *, now: datetime, tz: str, max_attempts: int
) -> CampaignStatusReport:
    with db() as s:
        camp = s.scalar(select(Campaign).where(Campaign.name == name))
        if camp is None:
            raise LifecycleError(f"no campaign named {name!r}")
        leads = {
            str(st): int(n)
            for st, n in s.execute(
                select(Lead.status, func.count(Lead.id))
                .where(Lead.campaign_id == camp.id)
                .group_by(Lead.status)
            )
        }
        day, _ = FrequencyCap.day_and_week_start(now, tz)
        today = s.scalar(
            select(func.count(CallAttempt.id)).where(
                CallAttempt.campaign_id == camp.id, CallAttempt.started_at >= day
            )
        )
        left, calling = _remaining(s, camp.id, max_attempts)
        return CampaignStatusReport(
            camp.name,
            state(camp.status),
            leads,
            int(today or 0),
            left,
            calling,
            camp.calling_hours,
            camp.calling_days,
        )


def list_campaigns(db: sessionmaker[Session]) -> list[tuple[str, str, int]]:
    """(name, state, leads) of every campaign, by name."""
    with db() as s:
        rows = s.execute(
            select(Campaign.name, Campaign.status, func.count(Lead.id))
            .outerjoin(Lead, Lead.campaign_id == Campaign.id)
            .group_by(Campaign.id, Campaign.name, Campaign.status)
            .order_by(Campaign.name)
        )
        return [(n, state(st), int(c)) for n, st, c in rows]
