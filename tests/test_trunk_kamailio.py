"""A real SIP trunk: Kamailio on loopback plays the carrier between the robot and the callee.

Kamailio (the Debian package) runs with a config written per test by simcallee.carrier
from its template: one user and password, no database. It challenges every
INVITE (407) and REGISTER (401), and relays authenticated calls, record-routed, to a
listening `WorkerPool` (the callee). Each test starts its own Kamailio and stops it at the end;
every wait is bounded. Skipped only when the kamailio binary is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

pytest.importorskip("pjsua2")

from bus.fake import RecordingBus
from callflow.session import SessionResult
from campaigns.compliance import CallingWindow
from campaigns.dialer import Dialer, TrunkConfig
from campaigns.store import ClaimedLead
from core.vocab import Disposition
from models import CallAttempt, Campaign, Lead, init_db
from simcallee.carrier import Carrier, CarrierError, kamailio_binary
from simcallee.carrier import kamailio as carrier_on
from telephony import CallHandle, CallState, DialRequest, Progress, WorkerPool
from telephony.base import TrunkRejectedError
from telephony.callerid import CallerIdPool
from telephony.trunk import TrunkSpec
from tests.test_telephony_pool import (
    STEP_S,
    dominant_hz,
    ended,
    record,
    running_pool,
    tone,
    wait_progress,
)

KAMAILIO = kamailio_binary()
pytestmark = [
    pytest.mark.sip,
    pytest.mark.skipif(KAMAILIO is None, reason="kamailio binary not installed (apt kamailio)"),
]

USER, PASSWORD = "robot", "s3cret-pw"
CALLER_IDS = ("02150001111", "02150002222")
LEAD = "13800000001"
NOW = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)


@contextlib.contextmanager
def kamailio(tmp_path: Path, callee_port: int) -> Iterator[Carrier]:
    """Kamailio on a free loopback port relaying to `callee_port`; stopped on exit."""
    with contextlib.ExitStack() as stack:
        try:
            c = stack.enter_context(
                carrier_on(
                    tmp_path / "kamailio", user=USER, password=PASSWORD, callee_port=callee_port
                )
            )
        except CarrierError as exc:
            tail = exc.log.read_text(errors="replace")[-2000:] if exc.log else ""
            pytest.fail(f"{exc}: {tail}")
        yield c


def trunk(**kw: Any) -> TrunkSpec:
    return TrunkSpec(**{"name": "carrier", "username": USER, "password": PASSWORD, **kw})


@pytest.fixture
async def callee() -> AsyncIterator[WorkerPool]:
    async with running_pool(listen=True) as pool:
        yield pool


@pytest.fixture
def carrier(tmp_path: Path, callee: WorkerPool) -> Iterator[Carrier]:
    with kamailio(tmp_path, callee.sip_ports[0]) as c:
        yield c


async def answer_through(robot: WorkerPool, callee: WorkerPool, uri: str) -> tuple[CallHandle, Any]:
    """Dial `uri` (the carrier), answer at the callee, return both ends."""
    call = await robot.dial(DialRequest(uri=uri))
    inbound = await asyncio.wait_for(callee.incoming(), STEP_S)
    assert inbound.to_user == LEAD
    await inbound.answer()
    await wait_progress(call, CallState.ANSWERED)
    await wait_progress(inbound, CallState.ANSWERED)
    return call, inbound


# --- (1) + (3): the right password; caller IDs from the pool -------------------------------


async def test_authenticated_call_is_relayed_answered_with_audio_and_pool_caller_ids(
    callee: WorkerPool, carrier: Carrier
) -> None:
    ids = CallerIdPool(CALLER_IDS)
    async with running_pool(trunk=trunk(display="Acme Sales"), caller_ids=ids) as robot:
        call, inbound = await answer_through(robot, callee, carrier.uri(LEAD))
        assert inbound.from_uri.startswith(f"sip:{CALLER_IDS[0]}@")  # From user: the pool's

        robot_tone, callee_tone = tone(440, 1.5), tone(1000, 1.5)
        call.send_audio(robot_tone)
        inbound.send_audio(callee_tone)
        heard_by_callee, heard_by_robot = await asyncio.gather(
            record(inbound, 1.0), record(call, 1.0)
        )
        assert abs(dominant_hz(heard_by_callee[6400:]) - 440) < 15
        assert abs(dominant_hz(heard_by_robot[6400:]) - 1000) < 15

        await call.hangup()  # the BYE follows the record-route through the carrier
        assert call.ended is not None and call.ended.end_reason is Disposition.COMPLETED
        assert (await ended(inbound)).hangup_by == "remote"

        second, inbound2 = await answer_through(robot, callee, carrier.uri(LEAD))
        assert inbound2.from_uri.startswith(f"sip:{CALLER_IDS[1]}@")  # rotated
        await second.hangup()
        await ended(inbound2)

    assert len(carrier.lines("invite challenged")) >= 2  # each INVITE got a 407 first
    relayed = carrier.lines("relaying")
    assert [line.split("from=")[1].split()[0] for line in relayed] == list(CALLER_IDS)
    assert all("Acme Sales" in line for line in relayed)  # the From display name
    assert [h.answered for h in ids.health()] == [1, 1]
    offers = carrier.lines("offer")  # the SDP offer's m= line, as the carrier saw it
    assert offers and all(" RTP/AVP 8 0 9 " in line for line in offers), offers  # PCMA PCMU G722


# --- (2): a wrong password: the SIP code surfaced, no attempt burned ------------------------


class EndOfLine:
    """A call runner that only waits for the line to end (answered calls are hung up)."""

    def __init__(self, call: CallHandle, seen: list[Progress]) -> None:
        self.call, self.seen = call, seen

    async def run(self) -> SessionResult:
        async with asyncio.timeout(STEP_S):
            async for event in self.call.events():
                if isinstance(event, Progress) and event.state is CallState.ANSWERED:
                    await self.call.hangup()
        assert self.call.ended is not None
        self.seen.append(self.call.ended)
        return SessionResult.of(
            None, end=self.call.ended, final_state="end", turns=[], answered_at=None
        )


async def test_wrong_password_is_refused_with_its_code_and_burns_no_attempt(
    tmp_path: Path, callee: WorkerPool, carrier: Carrier, caplog: pytest.LogCaptureFixture
) -> None:
    db = init_db(f"sqlite:///{tmp_path}/d.db")
    with db.begin() as s:
        camp = Campaign(name="c", script="demo.yaml")
        s.add(camp)
        s.flush()
        lead = Lead(campaign_id=camp.id, phone=LEAD)
        s.add(lead)
        s.flush()
        campaign_id, lead_id = camp.id, lead.id
    seen: list[Progress] = []

    def make_session(call: CallHandle, _lead: ClaimedLead) -> EndOfLine:
        return EndOfLine(call, seen)

    caplog.set_level(logging.ERROR, logger="telephony.pool")
    bad = trunk(password="wrong-password")
    async with running_pool(trunk=bad, trunk_rest_s=60.0) as robot:
        dialer = Dialer(
            db=db,
            telephony=robot,
            make_session=make_session,
            bus=RecordingBus(),
            trunk=TrunkConfig(f"sip:{{phone}}@{carrier.host}", name="carrier"),
            window=CallingWindow.parse("00:00-24:00"),
            max_concurrent=2,
            max_attempts=3,
            now=lambda: NOW,
        )
        async with asyncio.timeout(3 * STEP_S):
            done = await dialer.run_until_idle(campaign_id)

        assert done == []  # no attempt summary: the claim was released
        assert [(p.sip_code, p.end_reason) for p in seen] == [(407, Disposition.TRUNK_REJECTED)]
        with db() as s:
            row = s.get(Lead, lead_id)
            assert row is not None
            assert (row.attempts, row.claimed_by) == (0, None)
            assert s.scalar(select(func.count()).select_from(CallAttempt)) == 0

        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1, errors
        assert "'carrier'" in errors[0] and "SIP 407" in errors[0]

        assert robot.trunk_resting and robot.free_slots == 0
        with pytest.raises(TrunkRejectedError, match=r"'carrier'.*407"):
            await robot.dial(DialRequest(uri=carrier.uri(LEAD)))
        assert len(caplog.records) == 1  # still one line: the rest is not logged again

    assert carrier.lines("relaying") == []  # nothing reached the callee
    assert len(carrier.lines("invite challenged")) == 2  # challenged, then refused again


# --- (4): registration over TCP, through an outbound proxy ---------------------------------


async def test_registers_over_tcp_and_calls_through_the_outbound_proxy(
    callee: WorkerPool, carrier: Carrier
) -> None:
    spec = trunk(
        transport="tcp",
        register=True,
        registrar=f"sip:{carrier.host}",
        domain=carrier.host,
        outbound_proxy=f"sip:{carrier.host}",
    )
    async with running_pool(trunk=spec) as robot:
        async with asyncio.timeout(STEP_S):
            while not robot.registered:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        assert carrier.lines(f"registered user={USER}")
        # the request URI names a host nobody resolves: only the outbound proxy gets it there
        call, inbound = await answer_through(robot, callee, f"sip:{LEAD}@carrier.invalid")
        assert inbound.from_uri.startswith(f"sip:{USER}@")
        await call.hangup()
        await ended(inbound)
    assert carrier.lines(f"relaying from={USER}")


async def test_a_refused_registration_rests_the_trunk_with_one_error(
    callee: WorkerPool, carrier: Carrier, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="telephony.pool")
    spec = trunk(password="wrong-password", register=True, registrar=f"sip:{carrier.host}")
    async with running_pool(trunk=spec) as robot:
        async with asyncio.timeout(STEP_S):
            while not robot.trunk_resting:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        assert not robot.registered and robot.free_slots == 0
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "'carrier' refused registration: SIP 401" in errors[0], errors
