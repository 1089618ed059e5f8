"""Acceptance: a week of dialling on a fake clock, two campaigns sharing numbers, through the
real dialer, store and SQLite, on FakeTelephony.

Every placed call (FakeTelephony's dial log, with the fake time) is checked against the rules:
no call outside the calling window in the lead's local time (lunch break, evening), none on a
weekend or a holiday, none over the frequency caps per number across both campaigns (1 a day,
3 a week, in the lead's local day and week), none to a number on the global or a campaign's
do-not-call list, including one listed mid-campaign between its claim and its dial.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bus.fake import RecordingBus
from callflow.session import SessionResult
from campaigns import dnc, store
from campaigns.compliance import CallingWindow, FrequencyCap, zone
from campaigns.dialer import Dialer, TrunkConfig
from campaigns.store import ClaimedLead
from models import CallAttempt, Campaign, Lead, LeadStatus, init_db
from telephony.base import CallHandle, CallState, DialRequest, Progress
from telephony.fake import FakeCall, FakeTelephony

WINDOW = CallingWindow.parse("09:00-12:00,14:00-20:00", "mon-fri", "2026-11-25")
HOLIDAY = date(2026, 11, 25)  # a Wednesday
CAPS = FrequencyCap(per_day=1, per_week=3)
START = datetime(2026, 11, 22, 16, tzinfo=UTC)  # Monday 00:00 in Shanghai
STEP = timedelta(minutes=20)
NY = "America/New_York"


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


class LoggingTelephony(FakeTelephony):
    """Records (fake time, number) of every dial that reaches the trunk."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(max_calls=4)
        self.clock = clock
        self.placed: list[tuple[datetime, str]] = []

    async def dial(self, request: DialRequest) -> FakeCall:
        self.placed.append((self.clock(), request.uri.split(":")[1].split("@")[0]))
        return await super().dial(request)


class Answered:
    """Answers, says nothing useful, hangs up: no outcome, so the lead is retried."""

    def __init__(self, call: CallHandle) -> None:
        self.call = call

    async def run(self) -> SessionResult:
        async for event in self.call.events():
            if isinstance(event, Progress) and event.state is not CallState.RINGING:
                break
        await self.call.hangup()
        return SessionResult.of(
            None, end=self.call.ended, final_state="end", turns=[], answered_at=time.time()
        )


class Rig:
    def __init__(self, tmp_path: Path) -> None:
        self.db = init_db(f"sqlite:///{tmp_path}/c.db")
        self.clock = Clock()
        self.tel = LoggingTelephony(self.clock)
        self.dialer = Dialer(
            db=self.db,
            telephony=self.tel,
            make_session=lambda call, _lead: Answered(call),
            bus=RecordingBus(),
            trunk=TrunkConfig("sip:{phone}@sim"),
            window=WINDOW,
            max_concurrent=4,
            max_attempts=20,
            now=self.clock,
            caps=CAPS,
        )
        self.tz: dict[str, str] = {}

    def campaign(self, name: str) -> int:
        with self.db.begin() as s:
            camp = Campaign(name=name, script="s.yaml", timezone="Asia/Shanghai")
            s.add(camp)
            s.flush()
            return camp.id

    def lead(self, campaign_id: int, raw: str, tz: str | None = None) -> None:
        phone = dnc.normalize(raw)
        self.tz[phone] = tz or "Asia/Shanghai"
        with self.db.begin() as s:
            s.add(Lead(campaign_id=campaign_id, phone=phone, timezone=tz))

    async def run_week(self, campaigns: list[int]) -> None:
        while self.clock.now < START + timedelta(days=7):
            for cid in campaigns:
                await self.dialer.run_until_idle(cid)
            self.clock.now += STEP


def local(at: datetime, tz: str) -> datetime:
    return at.astimezone(zone(tz))


def week_of_calls(rig: Rig) -> Iterator[tuple[datetime, str, datetime]]:
    for at, phone in rig.tel.placed:
        yield at, phone, local(at, rig.tz[phone])


async def test_a_week_of_dialling_keeps_every_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = Rig(tmp_path)
    spring, autumn = rig.campaign("spring"), rig.campaign("autumn")
    shared = ["13800000001", "13800000002", "13800000003"]  # in both campaigns
    for raw in shared:
        rig.lead(spring, raw)
        rig.lead(autumn, "+86 " + raw)  # written differently: the same number
    rig.lead(spring, "13800000004", tz=NY)  # its window is New York's daytime
    rig.lead(spring, "13900000001")  # on the global list, written another way
    rig.lead(autumn, "13900000002")  # on autumn's list only ...
    rig.lead(spring, "13900000002")  # ... so spring may call it
    rig.lead(spring, "13900000003")  # listed between its claim and its dial
    dnc.add(rig.db, ["+86 139-0000-0001"], campaign=None, source="import")
    dnc.add(rig.db, ["0086 13900000002"], campaign="autumn", source="import")

    real_check = store.dial_check
    late = dnc.normalize("13900000003")

    def list_then_check(db: Any, lead: ClaimedLead) -> str | None:
        if lead.phone == late:  # the operator lists it after the claim, before the dial
            dnc.add(db, [lead.phone], campaign=None, source="operator")
        return real_check(db, lead)

    monkeypatch.setattr(store, "dial_check", list_then_check)

    await rig.run_week([spring, autumn])

    placed = list(week_of_calls(rig))
    assert placed, "nothing was dialled at all"
    for _at, _phone, there in placed:
        t = there.time()
        assert there.weekday() < 5, f"a call on a weekend: {there}"
        assert there.date() != HOLIDAY, f"a call on the holiday: {there}"
        assert (9 <= t.hour < 12) or (14 <= t.hour < 20), f"a call outside the window: {there}"
    numbers = Counter(phone for _, phone, _ in placed)
    assert dnc.normalize("13900000001") not in numbers  # global list
    assert late not in numbers  # listed mid-campaign
    per_day = Counter((phone, there.date()) for _, phone, there in placed)
    assert max(per_day.values()) == 1  # across both campaigns
    per_week: dict[str, int] = defaultdict(int)
    for _, phone, _there in placed:
        per_week[phone] += 1
    assert max(per_week.values()) == 3
    # the rules did not simply stop everything: every number that may be called, was, up to
    # its weekly cap (Mon, Tue, Thu: the holiday Wednesday and the weekend closed)
    for raw in [*shared, "13800000004", "13900000002"]:
        assert numbers[dnc.normalize(raw)] == 3, raw
    ny_days = {
        there.weekday() for _, phone, there in placed if phone == dnc.normalize("13800000004")
    }
    assert ny_days == {0, 1, 3}  # New York's own Monday, Tuesday, Thursday
    # autumn never called the number on its own list; spring did
    with rig.db() as s:
        by_campaign = dict(
            s.execute(
                select(Lead.campaign_id, func.count(CallAttempt.id))
                .join(CallAttempt, CallAttempt.lead_id == Lead.id)
                .where(Lead.phone == dnc.normalize("13900000002"))
                .group_by(Lead.campaign_id)
            ).all()
        )
        listed_late = s.scalars(select(Lead).where(Lead.phone == late)).one()
        assert (listed_late.status, listed_late.attempts) == (LeadStatus.DNC, 0)
        attempts = s.scalar(select(func.count(CallAttempt.id))) or 0
    assert by_campaign == {spring: 3}
    assert attempts == len(placed)  # a number found listed before its dial is no attempt
