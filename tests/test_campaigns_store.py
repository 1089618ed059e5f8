"""Lead claiming and outcome recording on a real SQLite database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from campaigns import store
from campaigns.compliance import CallingWindow, normalize_phone
from core.vocab import Grade, Outcome
from models import CallAttempt, Campaign, DncEntry, Lead, LeadStatus, OutboxItem, Turn, init_db

NOON_SHANGHAI = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
ALL_DAY = CallingWindow.parse("00:00-24:00")


@pytest.fixture
def db(tmp_path) -> sessionmaker[Session]:
    return init_db(f"sqlite:///{tmp_path}/t.db")


def seed(db: sessionmaker[Session], phones: list[str], tz: str | None = None) -> int:
    with db.begin() as s:
        c = Campaign(name="c", script="s.yaml", timezone="Asia/Shanghai")
        s.add(c)
        s.flush()
        for p in phones:
            s.add(Lead(campaign_id=c.id, phone=p, timezone=tz))
        return c.id


def claim(
    db: sessionmaker[Session],
    cid: int,
    now: datetime = NOON_SHANGHAI,
    window: CallingWindow = ALL_DAY,
) -> list[store.ClaimedLead]:
    return store.claim_due_leads(
        db, cid, limit=10, now=now, node="n1", window=window, max_attempts=3
    )


def record(db, lead, outcome, disposition="completed", slots=None):
    rec = store.AttemptRecord(
        lead=lead,
        node="n1",
        started_at=NOON_SHANGHAI,
        answered_at=NOON_SHANGHAI,
        ended_at=NOON_SHANGHAI + timedelta(seconds=30),
        disposition=disposition,
        sip_code=200,
        sip_reason="OK",
        hangup_by="local",
        outcome=outcome,
        grade=Grade.A if outcome == Outcome.QUALIFIED else None,
        final_state="x",
        slots=slots or {},
        turns=[
            {
                "speaker": "robot",
                "text": "您好",
                "intent": None,
                "confidence": None,
                "latency_ms": None,
                "interrupted": False,
                "detail": {},
            }
        ],
    )
    return store.record_attempt(
        db, rec, max_attempts=3, default_callback=NOON_SHANGHAI + timedelta(days=1)
    )


def test_claim_is_exclusive_and_skips_dnc(db) -> None:
    cid = seed(db, ["1", "2", "3"])
    with db.begin() as s:
        s.add(DncEntry(phone="2"))
    first = claim(db, cid)
    assert sorted(x.phone for x in first) == ["1", "3"]
    assert claim(db, cid) == []  # leased


def test_expired_lease_is_reclaimed(db) -> None:
    cid = seed(db, ["1"])
    assert claim(db, cid)
    later = NOON_SHANGHAI + store.LEASE + timedelta(seconds=1)
    assert [x.phone for x in claim(db, cid, now=later)] == ["1"]


def test_calling_window_uses_lead_timezone(db) -> None:
    cid = seed(db, ["1"], tz="America/New_York")  # 23:00 in New York at noon Shanghai
    assert claim(db, cid, window=CallingWindow.parse("09:00-21:00")) == []
    assert [x.phone for x in claim(db, cid)] == ["1"]  # no window: dialed


def test_qualified_writes_outbox_and_grade(db) -> None:
    cid = seed(db, ["1"])
    (lead,) = claim(db, cid)
    att = record(db, lead, "qualified")
    with db() as s:
        row = s.get(Lead, lead.lead_id)
        assert row is not None and row.status == LeadStatus.QUALIFIED and row.grade == "A"
        out = s.query(OutboxItem).one()
        assert out.kind == "lead.qualified" and out.payload["attempt_id"] == att
        assert s.query(Turn).filter_by(attempt_id=att).count() == 1


def test_dnc_outcome_blocks_future_dials(db) -> None:
    cid = seed(db, ["1"])
    (lead,) = claim(db, cid)
    record(db, lead, "dnc")
    assert store.is_dnc(db, "1")
    with db.begin() as s:  # even if someone resets the lead, the DNC list wins
        row = s.get(Lead, lead.lead_id)
        assert row is not None
        row.status = LeadStatus.NEW
    assert claim(db, cid) == []


def test_callback_uses_slot_time_else_default(db) -> None:
    cid = seed(db, ["1", "2"])
    a, b = claim(db, cid)
    record(db, a, "callback", slots={"callback_at": "2026-11-24T07:00:00+00:00"})
    record(db, b, "callback")
    with db() as s:
        ra, rb = s.get(Lead, a.lead_id), s.get(Lead, b.lead_id)
        assert ra is not None and rb is not None
        assert ra.callback_at is not None and ra.callback_at.day == 24
        assert rb.callback_at is not None and rb.callback_at.day == 24  # default: tomorrow
        assert ra.status == LeadStatus.CALLBACK


def test_unanswered_retries_until_attempts_exhausted(db) -> None:
    cid = seed(db, ["1"])
    now = NOON_SHANGHAI
    for _i in range(3):
        (lead,) = claim(db, cid, now=now)
        record(db, lead, None, disposition="busy")
        now += timedelta(hours=1)
    with db() as s:
        row = s.get(Lead, lead.lead_id)
        assert row is not None and row.status == LeadStatus.DONE and row.attempts == 3
        assert s.query(CallAttempt).count() == 3
    assert claim(db, cid, now=now + timedelta(days=1)) == []


def test_window_and_phone_helpers() -> None:
    w = CallingWindow.parse("09:00-21:00")
    assert w.allows(NOON_SHANGHAI, "Asia/Shanghai")
    assert not w.allows(NOON_SHANGHAI, "America/New_York")
    nxt = w.next_open(NOON_SHANGHAI, "America/New_York")
    assert nxt > NOON_SHANGHAI and w.allows(nxt, "America/New_York")
    with pytest.raises(ValueError, match="calling_hours"):
        CallingWindow.parse("9am-5pm")
    assert normalize_phone("+86 138-0013-8000") == "13800138000"


def test_an_early_qualified_outcome_writes_the_outbox_row_once(db) -> None:
    """A qualified outcome stored before the goodbye (campaigns.outcomes) already queues the
    lead for the CRM, so a crash before the end still delivers it; the attempt's own write then
    fills in its attempt id instead of queueing a second row."""
    from campaigns.outcomes import record_outcome_now

    cid = seed(db, ["13800000001"])
    (lead,) = claim(db, cid)
    assert record_outcome_now(db, lead, Outcome.QUALIFIED, Grade.A, node="n1")
    with db() as s:
        (early,) = s.query(OutboxItem).all()
        assert early.payload == {"lead_id": lead.lead_id, "attempt_id": None, "grade": "A"}
    attempt_id = record(db, lead, Outcome.QUALIFIED)
    with db() as s:
        (row,) = s.query(OutboxItem).all()
        assert row.id == early.id
        assert row.payload == {"lead_id": lead.lead_id, "attempt_id": attempt_id, "grade": "A"}
