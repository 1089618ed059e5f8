"""Conversation memory in the store and the CRM payload: a real SQLite database at head
(migration 0010), the claim handing the lead's fields to the session, slots and the mood
trajectory on the attempt, slots merged on the lead, the CRM payload built from them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from callflow.personal import lead_fields
from campaigns import store
from campaigns.compliance import CallingWindow
from core.vocab import Disposition, Grade, Outcome
from crm_sync.payload import build
from models import CallAttempt, Campaign, Lead, OutboxItem, init_db

NOON = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)


def _db(tmp_path) -> sessionmaker[Session]:
    db = init_db(f"sqlite:///{tmp_path}/m.db")
    with db.begin() as s:
        camp = Campaign(name="c", script="s.yaml", timezone="Asia/Shanghai")
        s.add(camp)
        s.flush()
        extra = {"性别": "男", "公司": "云帆贸易"}
        s.add(Lead(campaign_id=camp.id, phone="+8613800000001", name="王小明", extra=extra))
    return db


def _claim(db: sessionmaker[Session]) -> store.ClaimedLead:
    window = CallingWindow.parse("00:00-24:00")
    (lead,) = store.claim_due_leads(
        db, 1, limit=5, now=NOON, node="n1", window=window, max_attempts=3
    )
    return lead


def _record(db: sessionmaker[Session], lead: store.ClaimedLead, slots: dict, scores: list) -> int:
    rec = store.AttemptRecord(
        lead=lead,
        node="n1",
        started_at=NOON,
        answered_at=NOON,
        ended_at=NOON + timedelta(seconds=40),
        disposition=Disposition.COMPLETED,
        sip_code=200,
        sip_reason="OK",
        hangup_by="remote",
        outcome=Outcome.QUALIFIED,
        grade=Grade.A,
        final_state="end_qualified",
        slots=slots,
        turns=[],
        scores=scores,
    )
    return store.record_attempt(db, rec, max_attempts=3, default_callback=NOON)


def test_the_claim_hands_the_leads_fields_to_the_session_unlogged(tmp_path) -> None:
    lead = _claim(_db(tmp_path))
    assert lead_fields(lead.name, lead.extra)["title"] == "王先生"
    assert "王小明" not in repr(lead) and "云帆" not in repr(lead)  # never in a log line


def test_slots_and_the_trajectory_are_stored_and_sent_to_the_crm(tmp_path) -> None:
    db = _db(tmp_path)
    lead = _claim(db)
    slots = {"team_size": 20, "decision_maker": True, "wechat": "wx_abc123"}
    trajectory = [{"interest": 0.2, "hesitation": 0.1, "annoyance": 0.0},
                  {"interest": 0.9, "hesitation": 0.0, "annoyance": 0.0}]  # fmt: skip
    attempt_id = _record(db, lead, slots, trajectory)
    with db() as s:
        att = s.get(CallAttempt, attempt_id)
        row = s.get(Lead, lead.lead_id)
        assert att is not None and row is not None
        assert att.slots == slots and att.scores == trajectory
        assert row.slots == slots
        outbox = s.query(OutboxItem).one()
        payload = build(s, outbox)
    assert payload["slots"] == slots  # the stored memory, not the turns (there are none)
    assert payload["grade"] == "A"


def test_the_lead_remembers_across_attempts(tmp_path) -> None:
    db = _db(tmp_path)
    lead = _claim(db)
    with db.begin() as s:
        row = s.get(Lead, lead.lead_id)
        assert row is not None
        row.slots = {"budget": {"value": 5000.0}, "team_size": 8}  # an earlier call's memory
    _record(db, lead, {"team_size": 12}, [])
    with db() as s:
        row = s.get(Lead, lead.lead_id)
        assert row is not None and row.slots == {"budget": {"value": 5000.0}, "team_size": 12}
