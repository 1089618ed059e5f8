"""Acceptance: a campaign's lifecycle. A paused campaign places no new call within 1 s while
its calls in progress finish; a resumed one continues; a campaign with nothing left to dial
completes. Through the dialer alone (calls held open by the test) and through a running node
(`app.node.run_node` on fake engines and SQLite). Also the command line's lifecycle verbs.
"""

from __future__ import annotations

import asyncio
import io
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.config import load_config
from app.node import run_node
from bus.fake import RecordingBus
from callflow.session import SessionResult
from campaigns import lifecycle
from campaigns.cli import campaign_main
from campaigns.compliance import CallingWindow
from campaigns.dialer import Dialer, TrunkConfig
from models import CallAttempt, Campaign, CampaignStatus, Lead, LeadStatus, init_db
from telephony.base import CallHandle, CallState, Progress
from telephony.fake import FakeTelephony
from tests.nodeenv import fake_node_env

PAUSE_WITHIN_S = 1.0


class Held:
    """Holds an answered call until `gate` opens."""

    def __init__(self, call: CallHandle, gate: asyncio.Event) -> None:
        self.call, self.gate = call, gate

    async def run(self) -> SessionResult:
        async for event in self.call.events():
            if isinstance(event, Progress) and event.state is not CallState.RINGING:
                break
        await self.gate.wait()
        await self.call.hangup()
        return SessionResult.of(
            None, end=self.call.ended, final_state="end", turns=[], answered_at=time.time()
        )


async def wait_for(cond: object, within_s: float = 5.0) -> None:
    async with asyncio.timeout(within_s):
        while not cond():  # type: ignore[operator]  # noqa: ASYNC110
            await asyncio.sleep(0.005)


async def test_a_pause_stops_claims_at_once_and_lets_live_calls_finish(tmp_path: Path) -> None:
    db = init_db(f"sqlite:///{tmp_path}/p.db")
    with db.begin() as s:
        camp = Campaign(name="spring", script="s.yaml")
        s.add(camp)
        s.flush()
        s.add_all(Lead(campaign_id=camp.id, phone=f"1380000{i:04d}") for i in range(10))
        cid = camp.id
    tel = FakeTelephony(max_calls=8)
    gate = asyncio.Event()
    dialer = Dialer(
        db=db,
        telephony=tel,
        make_session=lambda call, _lead: Held(call, gate),
        bus=RecordingBus(),
        trunk=TrunkConfig("sip:{phone}@sim"),
        window=CallingWindow.parse("00:00-24:00"),
        max_concurrent=2,
        max_attempts=3,
    )
    run = asyncio.create_task(dialer.run_until_idle(cid))
    await wait_for(lambda: len(tel.calls) == 2)

    lifecycle.transition(db, "spring", "pause")
    gate.set()  # the two live calls end now: a dialer that ignored the pause would claim more
    done = await asyncio.wait_for(run, PAUSE_WITHIN_S)

    assert len(done) == 2 and len(tel.calls) == 2  # both calls finished and were stored
    with db() as s:
        assert s.scalar(select(func.count(CallAttempt.id))) == 2
        statuses = sorted(s.scalars(select(Lead.status)))
    assert statuses.count(LeadStatus.NEW) == 8 and LeadStatus.CALLING not in statuses

    lifecycle.transition(db, "spring", "resume")
    await asyncio.wait_for(dialer.run_until_idle(cid), 10)
    assert len(tel.calls) == 10


async def test_a_claim_the_pause_overtook_is_released_not_dialled(tmp_path: Path) -> None:
    """Paused between the claim and the dial: the lead goes back, no attempt counted."""
    db = init_db(f"sqlite:///{tmp_path}/r.db")
    with db.begin() as s:
        camp = Campaign(name="spring", script="s.yaml")
        s.add(camp)
        s.flush()
        s.add(Lead(campaign_id=camp.id, phone="13800000001"))
        cid = camp.id

    class PausingTelephony(FakeTelephony):
        pass

    tel = PausingTelephony()
    dialer = Dialer(
        db=db,
        telephony=tel,
        make_session=lambda call, _lead: Held(call, asyncio.Event()),
        bus=RecordingBus(),
        trunk=TrunkConfig("sip:{phone}@sim"),
        window=CallingWindow.parse("00:00-24:00"),
        max_concurrent=1,
        max_attempts=3,
    )
    (claimed,) = await dialer._claim(cid, 1)
    lifecycle.transition(db, "spring", "pause")
    assert await dialer.attempt(claimed) is None
    assert tel.calls == []
    with db() as s:
        lead = s.scalars(select(Lead)).one()
        assert (lead.status, lead.attempts, lead.claimed_by) == (LeadStatus.NEW, 0, None)


def node_env(tmp_path: Path) -> dict[str, str]:
    return fake_node_env(
        tmp_path,
        CALLBOT__CAMPAIGN__CALLS_PER_SECOND="20",  # a steady stream of new calls
        CALLBOT__CAMPAIGN__MAX_CONCURRENT_CALLS="2",
    )


async def test_a_running_node_pauses_within_a_second_and_resumes(tmp_path: Path) -> None:
    cfg = load_config("config.yaml", env=node_env(tmp_path))
    db = init_db(cfg.database.url)
    with db.begin() as s:
        camp = Campaign(name="spring", script=cfg.callflow.script)
        s.add(camp)
        s.flush()
        s.add_all(Lead(campaign_id=camp.id, phone=f"1380000{i:04d}") for i in range(400))

    def started() -> list[datetime]:
        with db() as s:
            return [t.replace(tzinfo=UTC) for t in s.scalars(select(CallAttempt.started_at))]

    node = asyncio.create_task(run_node(cfg, poll_s=5.0))  # the status poll, not this, resumes
    try:
        await wait_for(lambda: len(started()) >= 5, 30)
        lifecycle.transition(db, "spring", "pause")
        paused_at = datetime.now(UTC)
        await asyncio.sleep(PAUSE_WITHIN_S)
        stored_then = len(started())
        await asyncio.sleep(1.5)
        late = [t for t in started() if (t - paused_at).total_seconds() > PAUSE_WITHIN_S]
        assert late == [], f"{len(late)} calls started more than 1 s after the pause"
        assert len(started()) == stored_then < 400  # nothing more, and leads were left

        lifecycle.transition(db, "spring", "resume")
        t0 = time.monotonic()
        await wait_for(lambda: len(started()) > stored_then, 10)
        resumed_s = time.monotonic() - t0
    finally:
        node.cancel()
        await asyncio.gather(node, return_exceptions=True)
    assert resumed_s < 2.0, f"resumed after {resumed_s:.2f} s"


async def test_a_campaign_with_nothing_left_completes(tmp_path: Path) -> None:
    cfg = load_config("config.yaml", env=node_env(tmp_path))
    db = init_db(cfg.database.url)
    with db.begin() as s:
        camp = Campaign(name="small", script=cfg.callflow.script)
        s.add(camp)
        s.flush()
        s.add(Lead(campaign_id=camp.id, phone="13800000001", status=LeadStatus.QUALIFIED))

    def state() -> str:
        with db() as s:
            return s.scalars(select(Campaign.status)).one()

    node = asyncio.create_task(run_node(cfg, poll_s=0.05))
    try:
        await wait_for(lambda: state() == CampaignStatus.COMPLETED, 15)
    finally:
        node.cancel()
        await asyncio.gather(node, return_exceptions=True)


def test_the_lifecycle_commands(tmp_path: Path) -> None:
    db = init_db(f"sqlite:///{tmp_path}/cli.db")
    with db.begin() as s:
        camp = Campaign(name="spring", script="s.yaml", status=CampaignStatus.DRAFT)
        s.add(camp)
        s.flush()
        s.add(Lead(campaign_id=camp.id, phone="13800000001", name="张三"))
        s.add(Campaign(name="old", script="s.yaml", status=CampaignStatus.ACTIVE))

    def run(
        action: str, name: str | None = "spring", hours: str | None = None, days: str | None = None
    ) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        rc = campaign_main(
            db,
            action,
            name,
            tz="Asia/Shanghai",
            max_attempts=3,
            hours=hours,
            days=days,
            out=out,
            err=err,
        )
        return rc, out.getvalue(), err.getvalue()

    assert run("list", None)[1] == "old\trunning\t0 leads\nspring\tdraft\t1 leads\n"
    assert run("resume")[0] == 1  # a draft is started, not resumed
    assert run("start", hours="10:00-11:00", days="mon-fri")[1] == (
        "campaign spring: draft -> running\n"
    )
    rc, _, err = run("start", hours="10am")
    assert rc == 1 and "calling_hours" in err and err[-1] == "\n" and err.count("\n") == 1
    assert run("pause")[0] == 0 and run("pause")[1].endswith("(already)\n")
    rc, out, _ = run("status")
    assert rc == 0 and '"state": "paused"' in out and '"new": 1' in out
    assert "13800000001" not in out and "张三" not in out  # no PII
    assert run("complete")[0] == 0
    assert run("resume")[0] == 1  # completed is final
    assert run("pause", "nosuch")[2] == "campaign pause: no campaign named 'nosuch'\n"
    assert run("pause", "old")[1] == "campaign old: running -> paused\n"  # legacy "active"
    with db() as s:
        spring = s.scalars(select(Campaign).where(Campaign.name == "spring")).one()
        assert (spring.calling_hours, spring.calling_days) == ("10:00-11:00", "mon-fri")


@pytest.mark.parametrize("action", ["start", "pause", "resume", "complete"])
def test_every_transition_is_listed(action: str) -> None:
    allowed, target = lifecycle.TRANSITIONS[action]
    known = {str(x) for x in CampaignStatus}
    assert target in known and set(allowed) <= known
