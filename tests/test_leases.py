"""Issue 15: a node's leases are renewed from a thread of their own (campaigns.leases), and a
node's id is unique per process and checked (`main.py run --node-id`).

The lease keeper's thread must renew while the event loop is blocked (a knowledge index being
built, a slow import: measured up to 24 s on a loaded machine), and stop renewing once the loop
has been silent for `wedged_after_s`, so a wedged process does not keep its leads forever.
SQLite here (its own test of PostgreSQL is in tests/test_multinode_pg.py).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app import runtime
from bus.fake import RecordingBus
from callflow.session import SessionResult
from campaigns import store
from campaigns.compliance import CallingWindow
from campaigns.dialer import Dialer, TrunkConfig
from campaigns.leases import LeaseKeeper
from core.vocab import Disposition
from models import CallAttempt, Campaign, Lead, init_db
from telephony.base import CallHandle, CallState, Progress
from telephony.fake import FakeTelephony
from tests.nodeenv import ROOT, fake_node_env

ALL_DAY = CallingWindow.parse("00:00-24:00")
LEASE = timedelta(seconds=0.6)  # renewed every 0.2 s


def _claimed(db: sessionmaker[Session], phones: list[str]) -> list[store.ClaimedLead]:
    with db.begin() as s:
        camp = Campaign(name="c", script="s.yaml", timezone="Asia/Shanghai", status="running")
        s.add(camp)
        s.flush()
        s.add_all(Lead(campaign_id=camp.id, phone=p) for p in phones)
        cid = camp.id
    return store.claim_due_leads(
        db,
        cid,
        limit=10,
        now=datetime.now(UTC),
        node="n1",
        window=ALL_DAY,
        max_attempts=3,
        lease=LEASE,
    )


def _until(db: sessionmaker[Session], lead_id: int) -> datetime:
    with db() as s:
        until = s.scalar(select(Lead.claimed_until).where(Lead.id == lead_id))
    assert until is not None
    return until.replace(tzinfo=UTC) if until.tzinfo is None else until


async def _block_loop_while_kept(keeper: LeaseKeeper, block_s: float) -> None:
    """Start the keeper, let it beat, then block the event loop (a synchronous sleep)."""
    stop = asyncio.Event()
    task = asyncio.create_task(keeper.run(stop))
    await asyncio.sleep(0.3)
    time.sleep(block_s)  # noqa: ASYNC251 - the point: the loop is stuck, nothing on it runs
    stop.set()
    await task


def test_the_keeper_renews_while_the_event_loop_is_blocked(tmp_path: Path) -> None:
    db = init_db(f"sqlite:///{tmp_path / 'k.db'}")
    (lead,) = _claimed(db, ["13800000001"])
    keeper = LeaseKeeper(db, node="n1", lease=LEASE)
    lost: list[int] = []
    keeper.hold([lead], lost.append)
    asyncio.run(_block_loop_while_kept(keeper, 5 * LEASE.total_seconds()))
    blocked_until = datetime.now(UTC)
    # renewed during the block: still leased well past the claim's own lease
    assert _until(db, lead.lead_id) > blocked_until - LEASE / 2
    assert lost == [] and keeper.held == 1


def test_the_keeper_gives_up_on_a_wedged_event_loop(tmp_path: Path) -> None:
    db = init_db(f"sqlite:///{tmp_path / 'w.db'}")
    (lead,) = _claimed(db, ["13800000002"])
    keeper = LeaseKeeper(db, node="n1", lease=LEASE, wedged_after_s=0.5)
    keeper.hold([lead], lambda _id: None)
    asyncio.run(_block_loop_while_kept(keeper, 3.0))
    stuck_at = datetime.now(UTC)
    # renewed for the first half second of the block, then no more: long expired now
    assert _until(db, lead.lead_id) < stuck_at - timedelta(seconds=1)


def test_a_lost_claim_is_reported_on_the_event_loop_and_dropped(tmp_path: Path) -> None:
    db = init_db(f"sqlite:///{tmp_path / 'l.db'}")
    kept, taken = _claimed(db, ["13800000003", "13800000004"])
    keeper = LeaseKeeper(db, node="n1", lease=LEASE)
    with db.begin() as s:  # settled by another node, which claimed it again
        row = s.get(Lead, taken.lead_id)
        assert row is not None
        row.claimed_by = "n2"

    async def main() -> tuple[list[int], bool]:
        loop_thread: list[bool] = []
        lost: list[int] = []
        reported = asyncio.Event()

        def on_lost(lead_id: int) -> None:
            loop_thread.append(asyncio.get_running_loop() is not None)  # raises off the loop
            lost.append(lead_id)
            reported.set()

        keeper.hold([kept, taken], on_lost)
        stop = asyncio.Event()
        task = asyncio.create_task(keeper.run(stop))
        await reported.wait()
        stop.set()
        await task
        return lost, all(loop_thread)

    lost, on_loop = asyncio.run(asyncio.wait_for(main(), 10))
    assert lost == [taken.lead_id] and on_loop
    assert keeper.held == 1  # `kept` is still renewed


def test_default_node_ids_are_unique_per_process_and_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    from main import _valid_node_id

    ids = {runtime.default_node_id() for _ in range(50)}
    assert len(ids) == 50  # two nodes started in one process (or a reused pid) still differ
    assert all(f"-{os.getpid()}-" in i and _valid_node_id(i) for i in ids)
    monkeypatch.setattr(runtime.socket, "gethostname", lambda: "h/o+s#t" * 20)
    long_host = runtime.default_node_id()
    assert _valid_node_id(long_host) and len(long_host) <= 64


def test_node_ids_are_checked() -> None:
    from main import _valid_node_id

    assert _valid_node_id("dialer-a1") and _valid_node_id("x" * 64)
    for bad in ("", "x" * 65, "a/b", "n#1", "n+", "tab\there"):  # MQTT: one topic level
        assert not _valid_node_id(bad), bad


def test_a_bad_node_id_is_refused_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, **fake_node_env(tmp_path, inherit=True)}
    done = subprocess.run(
        [sys.executable, "main.py", "run", "--node-id", "a/b"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "--node-id" in done.stderr, done.stderr
    assert not (tmp_path / "node.db").exists()  # refused before anything started


class UntilHungUp:
    """A call session that holds the line until it ends (hung up by either side)."""

    def __init__(self, call: CallHandle) -> None:
        self.call = call

    async def run(self) -> SessionResult:
        async for event in self.call.events():
            if isinstance(event, Progress) and event.state is CallState.ENDED:
                break
        return SessionResult(
            answered=True,
            end=self.call.ended,
            outcome=None,
            grade=None,
            slots={},
            final_state="end",
            turns=[],
        )


def _dialer(db: sessionmaker[Session], tel: FakeTelephony, keeper: LeaseKeeper) -> Dialer:
    return Dialer(
        db=db,
        telephony=tel,
        make_session=lambda call, _lead: UntilHungUp(call),
        bus=RecordingBus(),
        trunk=TrunkConfig("sip:{phone}@sim"),
        window=ALL_DAY,
        max_concurrent=2,
        max_attempts=3,
        node="n1",
        lease=LEASE,
        leases=keeper,
    )


def _one_lead(db: sessionmaker[Session], phone: str) -> tuple[int, int]:
    with db.begin() as s:
        camp = Campaign(name="d", script="s.yaml", status="running")
        s.add(camp)
        s.flush()
        lead = Lead(campaign_id=camp.id, phone=phone)
        s.add(lead)
        s.flush()
        return camp.id, lead.id


async def test_a_call_longer_than_its_lease_keeps_its_lead(tmp_path: Path) -> None:
    """Another node settles expired leases all along: the keeper's renewals keep the call's."""
    db = init_db(f"sqlite:///{tmp_path / 'long.db'}")
    cid, lead_id = _one_lead(db, "13800000005")
    tel = FakeTelephony()
    keeper = LeaseKeeper(db, node="n1", lease=LEASE)
    stop = asyncio.Event()
    keeping = asyncio.create_task(keeper.run(stop))
    run = asyncio.create_task(_dialer(db, tel, keeper).run_until_idle(cid))
    for _ in range(20):  # 2 s: more than three leases
        await asyncio.sleep(0.1)
        await asyncio.to_thread(
            store.settle_expired_leases, db, now=datetime.now(UTC), max_attempts=3
        )
    assert len(tel.calls) == 1
    await tel.calls[0].hangup()
    (done,) = await asyncio.wait_for(run, 10)
    stop.set()
    await keeping
    with db() as s:
        dispositions = list(s.scalars(select(CallAttempt.disposition)))
    assert dispositions == [Disposition.COMPLETED] and done.lead_id == lead_id


async def test_a_call_whose_lease_is_lost_is_hung_up_and_not_stored(tmp_path: Path) -> None:
    db = init_db(f"sqlite:///{tmp_path / 'lost.db'}")
    cid, lead_id = _one_lead(db, "13800000006")
    tel = FakeTelephony()
    keeper = LeaseKeeper(db, node="n1", lease=LEASE)
    stop = asyncio.Event()
    keeping = asyncio.create_task(keeper.run(stop))
    run = asyncio.create_task(_dialer(db, tel, keeper).run_until_idle(cid))
    while not tel.calls:  # noqa: ASYNC110 - the fake telephony has no event for a dial
        await asyncio.sleep(0.02)
    with db.begin() as s:  # settled as lost by another node, and claimed by it again
        lead = s.get(Lead, lead_id)
        assert lead is not None
        lead.claimed_by = "n2"
    assert await asyncio.wait_for(run, 10) == []  # hung up by the dialer, nothing stored
    stop.set()
    await keeping
    assert tel.calls[0].ended is not None and tel.calls[0].ended.hangup_by == "local"
    with db() as s:
        assert s.scalar(select(func.count()).select_from(CallAttempt)) == 0
        lead = s.get(Lead, lead_id)
        assert lead is not None and lead.claimed_by == "n2"
