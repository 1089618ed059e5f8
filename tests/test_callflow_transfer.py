"""DTMF and transfers through CallSession and the Dialer over the fake telephony (a real
SQLite store), the transfer targets' syntax, and the recordings folder and its sweep. The same
paths over real SIP and Kamailio: tests/test_e2e_edge.py."""

from __future__ import annotations

import asyncio
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from callflow.script import Script
from callflow.transfer import TransferPolicy, parse_targets
from campaigns.recordings import Recordings
from campaigns.store import ClaimedLead
from models import CallAttempt, LeadStatus
from telephony.base import TransferEnded
from tests.test_callflow_dtmf import make
from tests.test_callflow_session import Rig, wait_for

AGENT_URI = "sip:8001@10.0.0.1"


class EdgeRig(Rig):
    """The session rig with a transfer policy (and recordings, when given)."""

    def __init__(self, tmp_path: Path, script: Script, policy: TransferPolicy) -> None:
        super().__init__(tmp_path, script)
        self.policy = policy

    def session_options(self, lead: ClaimedLead) -> dict[str, Any]:
        return {"transfer": self.policy}


async def press_after_greeting(rig: Rig, keys: str, result: TransferEnded | None = None) -> None:
    await wait_for(lambda: bool(rig.tel.calls) and len(rig.tel.calls[0].played) > 0)
    call = rig.tel.calls[0]
    if result is not None:
        call.transfer_result = result
    call.press(keys)


@pytest.mark.parametrize(
    ("result", "outcome", "status", "answered", "hangup_by"),
    [
        (TransferEnded("refer", 200, True), "transferred", LeadStatus.DONE, True, "local"),
        (
            TransferEnded("refer", 486, False),
            "human_requested",
            LeadStatus.CALLBACK,
            False,
            "local",
        ),
        (TransferEnded("bridge", 200, True), "transferred", LeadStatus.DONE, True, "remote"),
    ],
)
async def test_key_1_transfers_and_the_attempt_records_the_agent(
    tmp_path: Path,
    result: TransferEnded,
    outcome: str,
    status: str,
    answered: bool,
    hangup_by: str,
) -> None:
    rig = EdgeRig(tmp_path, make(), TransferPolicy({"agent": AGENT_URI}, "auto", 5.0))
    rig.add_lead("13800000001")

    async def callee() -> None:
        await press_after_greeting(rig, "1", result)
        if result.mode == "bridge":  # the robot keeps the line; the callee ends the call
            await wait_for(lambda: rig.tel.calls[0].transfers != [])
            await asyncio.sleep(0.2)
            rig.tel.calls[0].remote_hangup()

    driver = asyncio.create_task(callee())
    (res,) = await rig.dialer.run_until_idle(rig.campaign_id)
    await driver
    assert rig.tel.calls[0].transfers == [(AGENT_URI, "auto")]
    assert res.outcome == outcome
    with rig.db() as s:
        att = s.query(CallAttempt).one()
        assert (att.transfer_mode, att.agent_answered) == (result.mode, answered)
        assert att.hangup_by == hangup_by and att.lead.status == status


async def test_an_unknown_target_fails_the_transfer_without_dialling(tmp_path: Path) -> None:
    rig = EdgeRig(tmp_path, make(), TransferPolicy({}))
    rig.add_lead("13800000001")
    driver = asyncio.create_task(press_after_greeting(rig, "1"))
    (res,) = await rig.dialer.run_until_idle(rig.campaign_id)
    await driver
    assert res.outcome == "human_requested" and rig.tel.calls[0].transfers == []


async def test_a_mapped_key_cuts_the_robot_short_and_send_dtmf_sends(tmp_path: Path) -> None:
    rig = EdgeRig(tmp_path, make(), TransferPolicy())
    rig.tel.auto_play = False
    rig.add_lead("13800000001")

    async def callee() -> None:
        await wait_for(lambda: bool(rig.tel.calls) and rig.tel.calls[0].queued_ms > 1000)
        call = rig.tel.calls[0]
        call.advance(300)
        call.press("5")  # unmapped: the greeting plays on
        await asyncio.sleep(0.05)
        assert call.queued_ms > 500
        call.press("9")  # greeting's own key -> affirm -> menu
        await wait_for(lambda: call.queued_ms < 3000)
        call.advance_all()
        await asyncio.sleep(0.05)
        call.press("9")  # menu has no 9; nothing happens
        call.remote_hangup()

    driver = asyncio.create_task(callee())
    (res,) = await rig.dialer.run_until_idle(rig.campaign_id)
    await driver
    with rig.db() as s:
        att = s.query(CallAttempt).one()
        assert att.final_state == "menu" and att.transfer_mode is None
        greeting, menu = [t for t in att.turns if t.speaker == "robot"]
        assert greeting.interrupted and not menu.interrupted  # the key cut the greeting


def test_transfer_targets_parse() -> None:
    assert parse_targets("") == {}
    spec = "agent=sip:8001@10.0.0.1;transport=tcp, sales = sip:8002@pbx"
    assert parse_targets(spec) == {
        "agent": "sip:8001@10.0.0.1;transport=tcp",
        "sales": "sip:8002@pbx",
    }
    for bad in ("agent", "agent=8001", "=sip:1@h"):
        with pytest.raises(ValueError, match="name=sip:URI"):
            parse_targets(bad)
    with pytest.raises(ValueError, match="not one of"):
        TransferPolicy(mode="xfer")


def test_recording_folders_are_private_and_swept_after_retention(tmp_path: Path) -> None:
    recs = Recordings(tmp_path / "rec", retention_days=7)
    now = datetime(2026, 12, 1, 10, tzinfo=UTC)
    old = recs.folder_for(42, now - timedelta(days=8))
    kept = recs.folder_for(42, now - timedelta(days=7))
    (old / "robot.wav").write_bytes(b"x")
    for folder in (recs.root, old.parent, old, kept):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert old != recs.folder_for(42, now - timedelta(days=8))  # one folder per call
    assert "42-" in old.name and old.parent.name == "2026-11-23"
    (recs.root / "notes.txt").write_text("not a day")  # left alone
    assert recs.sweep(now) == 2
    assert not old.parent.exists() and kept.exists() and (recs.root / "notes.txt").exists()
    assert Recordings(recs.root, retention_days=0).sweep(now + timedelta(days=999)) == 0
    with pytest.raises(ValueError):
        Recordings(recs.root, retention_days=-1)
    assert os.listdir(kept.parent) == [kept.name]
