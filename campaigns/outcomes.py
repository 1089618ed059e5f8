"""A call's outcome stored the moment it is known, before the call ends.

The machine decides the outcome before the goodbye line (``callflow.machine.Finish``); the
dialer writes it here at once, so a crash, a shutdown or a lost worker during the goodbye still
leaves an opt-out on the do-not-call list, a settled lead settled, and a qualified lead's CRM
outbox row written. The attempt itself (its row, turns, attempt count) is written at the end by
``store.record_attempt``, which sets the same status again and fills the early outbox row's
attempt id: the two writes agree, and either may come alone.

Only outcomes that settle the lead for good are written early (do-not-call, qualified, not
interested, wrong person): a callback would make the lead due again while its call is live.
"""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from core.vocab import Grade, Outcome
from models import DncEntry, Lead, LeadStatus, write_transaction

from .store import (
    DEFAULT_GRADE,
    DUE_STATUSES,
    OUTCOME_STATUS,
    ClaimedLead,
    qualified_outbox,
    same_claim,
)

DNC_SOURCE = "callee"  # as store.record_attempt writes it


def settles_early(outcome: Outcome) -> bool:
    """True for an outcome that `record_outcome_now` stores before the call ends."""
    status = OUTCOME_STATUS.get(outcome)
    return status is not None and status not in DUE_STATUSES


def record_outcome_now(
    db: sessionmaker[Session],
    lead: ClaimedLead,
    outcome: Outcome,
    grade: Grade | None,
    *,
    node: str,
) -> bool:
    """Store `outcome` for the claimed `lead` now: the number on the do-not-call list for
    ``dnc``, the lead's status (and grade) for a settling outcome. The lead is left leased to
    `node`; a lead no longer this node's claim keeps its status (the DNC entry is added anyway:
    the callee asked). False when the outcome does not settle the lead early (nothing written)."""
    if not settles_early(outcome):
        return False
    status = OUTCOME_STATUS[outcome]
    with db.begin() as s:
        write_transaction(s)
        if status is LeadStatus.DNC and s.get(DncEntry, lead.phone) is None:
            s.add(DncEntry(phone=lead.phone, source=DNC_SOURCE))
        row = s.get(Lead, lead.lead_id, with_for_update=True)  # after a settling of its lease
        if row is None or row.claimed_by != node or not same_claim(lead.claimed_at, row.claimed_at):
            return True
        row.status = status
        if status is LeadStatus.QUALIFIED:
            row.grade = grade or DEFAULT_GRADE
            qualified_outbox(s, row.id, row.grade, None)  # must-deliver: with the status
    return True
