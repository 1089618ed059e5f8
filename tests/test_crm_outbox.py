from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crm_sync import deliver_pending
from crm_sync.fake import FakeCrm
from models import Campaign, Lead, OutboxItem, init_db

T0 = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)


def seed(tmp_path):
    db = init_db(f"sqlite:///{tmp_path}/o.db")
    with db.begin() as s:
        c = Campaign(name="c", script="s")
        s.add(c)
        s.flush()
        lead = Lead(campaign_id=c.id, phone="1")
        s.add(lead)
        s.flush()
        s.add(OutboxItem(kind="lead.qualified", lead_id=lead.id, payload={"lead_id": lead.id}))
    return db


async def test_delivers_once_and_marks_sent(tmp_path) -> None:
    db = seed(tmp_path)
    crm = FakeCrm()
    assert await deliver_pending(db, crm, now=T0) == (1, 0)
    assert await deliver_pending(db, crm, now=T0) == (0, 0)
    assert crm.delivered[0][0] == "lead.qualified"
    assert crm.delivered[0][1]["outbox_id"] == 1


async def test_failure_keeps_row_and_backs_off(tmp_path) -> None:
    db = seed(tmp_path)
    crm = FakeCrm(fail_times=1)
    assert await deliver_pending(db, crm, now=T0) == (0, 1)
    assert await deliver_pending(db, crm, now=T0 + timedelta(seconds=1)) == (0, 0)  # backing off
    assert await deliver_pending(db, crm, now=T0 + timedelta(minutes=1)) == (1, 0)
    with db() as s:
        row = s.query(OutboxItem).one()
        assert row.sent_at is not None and row.tries == 2


async def test_permanent_failure_stops_retrying(tmp_path) -> None:
    db = seed(tmp_path)
    crm = FakeCrm(fail_times=1, retryable=False)
    assert await deliver_pending(db, crm, now=T0) == (0, 1)
    assert await deliver_pending(db, crm, now=T0 + timedelta(days=1)) == (0, 0)
    with db() as s:
        assert s.query(OutboxItem).one().last_error == "scripted failure"
