"""The dialer's contract with the call pool, on FakeTelephony and a real SQLite database.

It claims at most min(its free concurrency, the pool's free slots) leads a round, so a full
pool costs no lead an attempt; a dial that still finds the pool busy (another user took the
slot between claim and dial) releases its claim. The call sessions here are `HeldSession`s:
they hold the line until the test lets go, then report a scripted outcome (the real
CallSession through the dialer is tests/test_callflow_session.py's subject).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bus.fake import RecordingBus
from callflow.session import SessionResult
from campaigns import store
from campaigns.compliance import CallingWindow
from campaigns.dialer import CALL_ENDED, CALL_STARTED, LEAD_QUALIFIED, Dialer, TrunkConfig
from campaigns.store import ClaimedLead
from core.vocab import Disposition, Grade, Outcome
from models import CallAttempt, Campaign, Lead, LeadStatus, OutboxItem, OutboxKind, init_db
from telephony.base import CallHandle, CallState, DialRequest, Progress, TelephonyBusyError
from telephony.fake import FakeCall, FakeTelephony, fails

NOW = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)


class HeldSession:
    """Waits for the answer, holds an answered call until `gate` opens, hangs up, reports
    `outcome` (and `grade`)."""

    def __init__(
        self, call: CallHandle, gate: asyncio.Event, outcome: Outcome | None, grade: Grade | None
    ) -> None:
        self.call, self.gate, self.outcome, self.grade = call, gate, outcome, grade

    async def run(self) -> SessionResult:
        answered = False
        async for event in self.call.events():
            if isinstance(event, Progress) and event.state is not CallState.RINGING:
                answered = event.state is CallState.ANSWERED
                break
        if answered:
            await self.gate.wait()
        await self.call.hangup()
        return SessionResult(
            answered=answered,
            end=self.call.ended,
            outcome=self.outcome,
            grade=self.grade,
            slots={},
            final_state="end",
            turns=[],
        )


class CountingTelephony(FakeTelephony):
    """FakeTelephony that counts dials and refusals; while `racing`, another user of the pool
    takes every free slot just before a `dial()` lands (inbound calls hold them)."""

    racing = False
    dials = 0  # dial() calls
    refused = 0  # of them, those that raised TelephonyBusyError

    async def dial(self, request: DialRequest) -> FakeCall:
        self.dials += 1
        while self.racing and self.free_slots > 0:
            self.ring_in()
        try:
            return await super().dial(request)
        except TelephonyBusyError:
            self.refused += 1
            raise


class Rig:
    def __init__(self, tmp_path: Path, tel: FakeTelephony, *, max_concurrent: int = 4) -> None:
        self.db = init_db(f"sqlite:///{tmp_path}/d.db")
        self.tel = tel
        self.bus = RecordingBus()
        self.gate = asyncio.Event()
        self.outcome: Outcome | None = Outcome.NOT_INTERESTED
        self.grade: Grade | None = None
        self.sessions: list[HeldSession] = []
        self.dialer = Dialer(
            db=self.db,
            telephony=tel,
            make_session=self.make_session,
            bus=self.bus,
            trunk=TrunkConfig("sip:{phone}@sim"),
            window=CallingWindow.parse("00:00-24:00"),
            max_concurrent=max_concurrent,
            max_attempts=3,
            now=lambda: NOW,
        )
        with self.db.begin() as s:
            camp = Campaign(name="c", script="demo.yaml")
            s.add(camp)
            s.flush()
            self.campaign_id = camp.id

    def make_session(self, call: CallHandle, lead: ClaimedLead) -> HeldSession:
        session = HeldSession(call, self.gate, self.outcome, self.grade)
        self.sessions.append(session)
        return session

    def add_lead(self, phone: str, **kw: object) -> int:
        with self.db.begin() as s:
            lead = Lead(campaign_id=self.campaign_id, phone=phone, **kw)
            s.add(lead)
            s.flush()
            return lead.id

    def lead(self, lead_id: int) -> Lead:
        with self.db() as s:
            lead = s.get(Lead, lead_id)
            assert lead is not None
            return lead

    def attempts_stored(self) -> int:
        with self.db() as s:
            return s.scalar(select(func.count()).select_from(CallAttempt)) or 0

    def run(self) -> asyncio.Task[list]:
        return asyncio.create_task(self.dialer.run_until_idle(self.campaign_id))


async def wait_for(cond: Callable[[], bool], within_s: float = 5.0) -> None:
    async with asyncio.timeout(within_s):
        while not cond():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


async def test_a_full_pool_claims_no_lead_and_burns_no_attempt(tmp_path: Path) -> None:
    tel = CountingTelephony(max_calls=1)
    rig = Rig(tmp_path, tel)
    ids = [rig.add_lead(p) for p in ("1", "2", "3")]
    tel.ring_in()  # the only slot is taken

    assert await rig.dialer.run_until_idle(rig.campaign_id) == []

    assert tel.dials == 0  # nothing was claimed, so nothing was dialed
    assert tel.calls == [] and rig.sessions == []
    for lead_id in ids:
        lead = rig.lead(lead_id)
        assert (lead.status, lead.attempts, lead.claimed_by) == (LeadStatus.NEW, 0, None)
    assert rig.attempts_stored() == 0


async def test_claims_never_exceed_the_free_slots(tmp_path: Path) -> None:
    tel = CountingTelephony(max_calls=2)
    rig = Rig(tmp_path, tel, max_concurrent=4)
    ids = [rig.add_lead(p) for p in ("1", "2", "3")]
    run = rig.run()

    await wait_for(lambda: len(rig.sessions) == 2)
    await asyncio.sleep(0.05)  # a dialer that over-claims would have claimed the third by now
    statuses = sorted((rig.lead(i).status, rig.lead(i).attempts) for i in ids)
    assert statuses == [("calling", 1), ("calling", 1), ("new", 0)]
    assert tel.free_slots == 0

    rig.gate.set()
    results = await run
    assert len(results) == 3 and (tel.dials, tel.refused) == (3, 0)
    assert [rig.lead(i).attempts for i in ids] == [1, 1, 1]
    assert rig.attempts_stored() == 3


async def test_claimed_but_not_yet_dialed_leads_hold_their_slot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lead 1's call fails at once while lead 2 is still before its dial (its pre-dial check
    held up): the next round may claim one lead, not two, or lead 2 would find the pool full."""
    tel = CountingTelephony(max_calls=2)
    tel.script_uri("sip:1@sim", fails())
    rig = Rig(tmp_path, tel, max_concurrent=4)
    rig.outcome = None  # every call ends without an outcome: lead 1 is left to retry
    ids = [rig.add_lead(p) for p in ("1", "2", "3", "4")]
    held = threading.Event()
    real_check = store.dial_check

    def slow_check(db: Any, lead: ClaimedLead) -> str | None:
        if lead.phone == "2":
            held.wait(5.0)
        return real_check(db, lead)

    monkeypatch.setattr(store, "dial_check", slow_check)
    run = rig.run()
    await wait_for(lambda: rig.attempts_stored() == 1 and tel.dials == 2)  # lead 1, then 3
    await asyncio.sleep(0.05)  # a dialer that over-claims would have claimed lead 4 by now
    assert [rig.lead(i).status for i in ids] == ["retry", "calling", "calling", "new"]
    held.set()
    await wait_for(lambda: tel.dials == 3)  # lead 2 dials into the slot kept for it
    rig.gate.set()
    results = await run
    assert sorted(r.lead_id for r in results) == ids
    assert (tel.dials, tel.refused) == (4, 0)


async def test_a_busy_race_releases_the_claim(tmp_path: Path) -> None:
    tel = CountingTelephony(max_calls=2)
    tel.racing = True
    rig = Rig(tmp_path, tel)
    fresh = rig.add_lead("1")
    retried = rig.add_lead("2", status=LeadStatus.RETRY, attempts=1)

    assert await rig.dialer.run_until_idle(rig.campaign_id) == []

    assert tel.refused == 2  # both leads were claimed and dialed: the pool refused both
    assert tel.calls == [] and rig.sessions == []
    lead = rig.lead(fresh)
    assert (lead.status, lead.attempts, lead.claimed_by, lead.claimed_until) == (
        LeadStatus.NEW,
        0,
        None,
        None,
    )
    other = rig.lead(retried)
    assert (other.status, other.attempts, other.claimed_by) == (LeadStatus.RETRY, 1, None)
    assert rig.attempts_stored() == 0 and rig.bus.published == []

    # the other caller hangs up: the released leads are dialed later, their attempt counted once
    for inbound in tel.inbound:
        await inbound.hangup()
    tel.racing = False
    rig.gate.set()
    results = await rig.dialer.run_until_idle(rig.campaign_id)
    assert sorted(r.lead_id for r in results) == [fresh, retried]
    assert (rig.lead(fresh).attempts, rig.lead(retried).attempts) == (1, 2)


async def test_release_of_an_expired_lease_makes_the_lead_due(tmp_path: Path) -> None:
    rig = Rig(tmp_path, FakeTelephony())
    stale = rig.add_lead(
        "1", status=LeadStatus.CALLING, attempts=1, claimed_by="gone", claimed_until=NOW
    )
    window = CallingWindow.parse("00:00-24:00")
    later = NOW + timedelta(minutes=1)
    (claimed,) = store.claim_due_leads(
        rig.db, rig.campaign_id, limit=5, now=later, node="n1", window=window, max_attempts=3
    )
    # the expired lease was first settled into the retry policy (its lost attempt recorded)
    assert (claimed.prior_status, claimed.attempt_no) == (LeadStatus.RETRY, 2)
    assert not store.release_claim(rig.db, claimed, node="another node")
    assert store.release_claim(rig.db, claimed, node="n1")
    lead = rig.lead(stale)
    assert (lead.status, lead.attempts, lead.claimed_until) == (LeadStatus.RETRY, 1, None)
    assert [
        c.lead_id
        for c in store.claim_due_leads(
            rig.db, rig.campaign_id, limit=5, now=later, node="n1", window=window, max_attempts=3
        )
    ] == [stale]


async def test_normal_dialing_stores_the_vocabulary(tmp_path: Path) -> None:
    rig = Rig(tmp_path, FakeTelephony(max_calls=1))
    rig.outcome, rig.grade = Outcome.QUALIFIED, None
    lead_id = rig.add_lead("1")
    rig.gate.set()

    (res,) = await rig.dialer.run_until_idle(rig.campaign_id)

    assert (res.lead_id, res.disposition, res.outcome) == (
        lead_id,
        Disposition.COMPLETED,
        Outcome.QUALIFIED,
    )
    assert rig.bus.topics() == [CALL_STARTED, CALL_ENDED, LEAD_QUALIFIED]
    assert rig.bus.published[0].payload["lead_id"] == lead_id
    assert rig.bus.published[2].payload["grade"] == Grade.B
    with rig.db() as s:
        att = s.scalars(select(CallAttempt)).one()
        assert (att.disposition, att.outcome, att.sip_code) == ("completed", "qualified", 200)
        assert s.scalars(select(OutboxItem.kind)).one() == OutboxKind.LEAD_QUALIFIED
    lead = rig.lead(lead_id)
    assert (lead.status, lead.grade, lead.attempts) == (LeadStatus.QUALIFIED, "B", 1)
