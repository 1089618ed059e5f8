"""FakeTelephony: scripted behaviour, and parity with the real WorkerPool on basic cases."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import NamedTuple

import pytest

from telephony import (
    FRAME_BYTES,
    CallHandle,
    CallState,
    DialRequest,
    Disposition,
    Dtmf,
    FakeTelephony,
    PlayoutCleared,
    PlayoutMark,
    PoolBusyError,
    Progress,
    Scenario,
    TelephonyBusyError,
    answers,
    busy,
    fails,
    no_answer,
    rejected,
)

URI = "sip:13800000001@sim"
RINGING = (CallState.RINGING, 180, None, None)
ANSWERED = (CallState.ANSWERED, 200, None, None)


def states(events: list[object]) -> list[tuple[object, ...]]:
    """What parity is judged on: state, SIP code, end reason, hangup side."""
    return [
        (e.state, e.sip_code, e.end_reason, e.hangup_by) for e in events if isinstance(e, Progress)
    ]


async def _take(call: CallHandle, n: int) -> list[object]:
    it = aiter(call.events())
    return [await anext(it) for _ in range(n)]


async def drain(call: CallHandle) -> list[object]:
    async with asyncio.timeout(5):
        return [e async for e in call.events()]


async def test_answer_audio_marks_and_hangup() -> None:
    async with FakeTelephony() as tel:
        call = await tel.dial(DialRequest(URI))
        fake = tel.calls[-1]
        assert fake.request is not None and fake.request.uri == URI
        assert await _take(call, 2) == [
            Progress(CallState.RINGING, 180, "Ringing"),
            Progress(CallState.ANSWERED, 200, "OK"),
        ]

        fake.push_audio(b"\x01\x00" * 200)  # 25 ms -> two frames, the last padded
        frames = [await anext(aiter(call.audio())) for _ in range(2)]
        assert [len(f) for f in frames] == [FRAME_BYTES, FRAME_BYTES]
        assert frames[1][80:] == bytes(FRAME_BYTES - 80)

        call.send_audio(b"\x02\x00" * 800)
        call.mark("m1")  # auto_play: played at once
        assert await anext(aiter(call.events())) == PlayoutMark("m1")
        assert bytes(fake.played) == b"\x02\x00" * 800

        fake.press("5")
        assert await anext(aiter(call.events())) == Dtmf("5")
        await call.hangup()
        assert call.ended == Progress(CallState.ENDED, 200, "OK", Disposition.COMPLETED, "local")
        assert await drain(call) == [call.ended]
        with pytest.raises(StopAsyncIteration):
            await anext(aiter(call.audio()))


async def test_manual_playout_marks_and_clear() -> None:
    async with FakeTelephony(auto_play=False) as tel:
        call = await tel.dial(DialRequest(URI))
        fake = tel.calls[-1]
        assert states(await _take(call, 2)) == [RINGING, ANSWERED]
        call.send_audio(bytes(16000))  # 1 s
        call.mark("one-second")
        call.send_audio(bytes(16000))
        call.mark("two-seconds")
        fake.advance(999)
        assert fake.queued_ms == 1001
        fake.advance(1)
        call.clear_audio()
        events = await asyncio.wait_for(_take(call, 2), 1)
        assert events == [PlayoutMark("one-second"), PlayoutCleared(1000)]
        assert len(fake.played) == 32000 - 16000
        call.mark("empty")  # nothing queued -> at once
        assert await anext(aiter(call.events())) == PlayoutMark("empty")
        await call.hangup()


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        (busy(), [RINGING, (CallState.ENDED, 486, Disposition.BUSY, "remote")]),
        (rejected(603), [RINGING, (CallState.ENDED, 603, Disposition.REJECTED, "remote")]),
        (no_answer(0.01), [RINGING, (CallState.ENDED, 487, Disposition.NO_ANSWER, "local")]),
        (fails("unresolvable"), [(CallState.ENDED, None, Disposition.FAILED, None)]),
    ],
)
async def test_scripted_failures(scenario: Scenario, expected: list[tuple[object, ...]]) -> None:
    async with FakeTelephony() as tel:
        tel.script(scenario)
        call = await tel.dial(DialRequest(URI))
        assert states(await drain(call)) == expected
        assert call.ended is not None and call.ended.reason == scenario.reason
        second = await tel.dial(DialRequest(URI))  # script consumed: the default answers
        assert states(await _take(second, 2)) == [RINGING, ANSWERED]


async def test_script_by_uri_and_hangup_while_ringing() -> None:
    async with FakeTelephony() as tel:
        tel.script_uri("sip:busy@sim", busy())
        busy_call = await tel.dial(DialRequest("sip:busy@sim"))
        assert states(await drain(busy_call))[-1][2] is Disposition.BUSY
        tel.script(answers(ring_s=30))
        call = await tel.dial(DialRequest(URI))
        assert states(await _take(call, 1)) == [RINGING]
        await call.hangup()
        assert states(await drain(call)) == [(CallState.ENDED, 487, Disposition.NO_ANSWER, "local")]
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("fake.")]


async def test_capacity_like_the_pool() -> None:
    async with FakeTelephony(max_calls=1) as tel:
        first = await tel.dial(DialRequest(URI))
        with pytest.raises(TelephonyBusyError):
            await tel.dial(DialRequest(URI))
        await first.hangup()
        await tel.dial(DialRequest(URI))
    assert issubclass(PoolBusyError, TelephonyBusyError)  # one except clause serves both


async def test_free_slots_full_freed_and_closed() -> None:
    tel = FakeTelephony(max_calls=2, scenario=answers(ring_s=30))
    await tel.start()
    assert tel.free_slots == 2
    first = await tel.dial(DialRequest(URI))
    second = await tel.dial(DialRequest(URI))
    assert tel.free_slots == 0  # full: a dialer reading it places nothing
    with pytest.raises(TelephonyBusyError):
        await tel.dial(DialRequest(URI))
    assert len(tel.calls) == 2  # the refused dial placed no call
    tel.calls[0].remote_hangup()  # the callee gives up while it rings
    assert first.ended is not None and tel.free_slots == 1
    await second.hangup()
    assert tel.free_slots == 2
    inbound = tel.ring_in()  # a ringing inbound call holds a slot too
    assert tel.free_slots == 1
    await inbound.reject()
    assert tel.free_slots == 2
    await tel.close()
    assert tel.free_slots == 0


async def test_free_slots_unbounded_by_default() -> None:
    async with FakeTelephony() as tel:
        before = tel.free_slots
        call = await tel.dial(DialRequest(URI))
        assert tel.free_slots == before - 1 > 0
        await call.hangup()
        assert tel.free_slots == before
    assert tel.free_slots == 0


async def test_inbound_answer_reject_and_close() -> None:
    tel = FakeTelephony()
    await tel.start()
    rung = tel.ring_in("13800000002", "sip:caller@sim")
    inbound = await tel.incoming()
    assert inbound is rung and (inbound.to_user, inbound.from_uri) == (
        "13800000002",
        "sip:caller@sim",
    )
    await inbound.answer()
    inbound.remote_hangup()
    assert states(await drain(inbound)) == [
        (CallState.RINGING, 180, None, None),
        (CallState.ANSWERED, 200, None, None),
        (CallState.ENDED, 200, Disposition.COMPLETED, "remote"),
    ]
    second = tel.ring_in()
    await (await tel.incoming()).reject(486)
    assert second.ended is not None
    assert (second.ended.end_reason, second.ended.hangup_by) == (Disposition.BUSY, "local")
    await tel.close()
    with pytest.raises(RuntimeError):
        await tel.incoming()
    with pytest.raises(RuntimeError):
        await tel.dial(DialRequest(URI))


# --- parity: the same scenarios against the fake and against real pjsua2 workers ---------


class ParityCase(NamedTuple):
    scenario: Scenario  # what the fake is scripted with
    callee: str  # what the real callee does: answer, ignore, reject<code>
    robot_hangs_up_on: CallState | None
    callee_hangs_up: bool
    expected: list[tuple[object, ...]]


PARITY_CASES = {
    "robot_hangs_up": ParityCase(
        answers(),
        "answer",
        CallState.ANSWERED,
        False,
        [RINGING, ANSWERED, (CallState.ENDED, 200, Disposition.COMPLETED, "local")],
    ),
    "callee_hangs_up": ParityCase(
        answers(),
        "answer",
        None,
        True,
        [RINGING, ANSWERED, (CallState.ENDED, 200, Disposition.COMPLETED, "remote")],
    ),
    "busy": ParityCase(
        busy(),
        "reject486",
        None,
        False,
        [RINGING, (CallState.ENDED, 486, Disposition.BUSY, "remote")],
    ),
    "declined": ParityCase(
        rejected(603),
        "reject603",
        None,
        False,
        [RINGING, (CallState.ENDED, 603, Disposition.REJECTED, "remote")],
    ),
    "robot_cancels_while_ringing": ParityCase(
        answers(ring_s=30),
        "ignore",
        CallState.RINGING,
        False,
        [RINGING, (CallState.ENDED, 487, Disposition.NO_ANSWER, "local")],
    ),
}

Run = Callable[[ParityCase], Awaitable[list[tuple[object, ...]]]]


async def _robot_side(
    call: CallHandle, sc: ParityCase, callee_hangup: Callable[[], Awaitable[None]]
) -> list[tuple[object, ...]]:
    events: list[object] = []
    async with asyncio.timeout(10):
        async for ev in call.events():
            events.append(ev)
            if not isinstance(ev, Progress):
                continue
            if ev.state is sc.robot_hangs_up_on:
                await call.hangup()
            elif ev.state is CallState.ANSWERED and sc.callee_hangs_up:
                await callee_hangup()
    return states(events)


@contextlib.asynccontextmanager
async def _fake_runner() -> AsyncIterator[Run]:
    async with FakeTelephony() as tel:

        async def run(sc: ParityCase) -> list[tuple[object, ...]]:
            tel.script(sc.scenario)
            call = await tel.dial(DialRequest(URI))

            async def callee_hangup() -> None:
                tel.calls[-1].remote_hangup()

            return await _robot_side(call, sc, callee_hangup)

        yield run


@contextlib.asynccontextmanager
async def _pool_runner() -> AsyncIterator[Run]:
    pytest.importorskip("pjsua2")
    from tests.test_telephony_pool import callee_uri, running_pool

    async with running_pool(listen=True) as callee, running_pool() as robot:

        async def run(sc: ParityCase) -> list[tuple[object, ...]]:
            call = await robot.dial(DialRequest(callee_uri(callee)))
            inbound = await asyncio.wait_for(callee.incoming(), 5)
            if sc.callee == "answer":
                await inbound.answer()
            elif sc.callee.startswith("reject"):
                await inbound.reject(int(sc.callee.removeprefix("reject")))
            return await _robot_side(call, sc, inbound.hangup)

        yield run


@pytest.mark.parametrize("case", sorted(PARITY_CASES))
@pytest.mark.parametrize("engine", ["fake", pytest.param("pool", marks=pytest.mark.sip)])
async def test_fake_matches_real_pool(engine: str, case: str) -> None:
    sc = PARITY_CASES[case]
    async with _fake_runner() if engine == "fake" else _pool_runner() as run:
        assert await run(sc) == sc.expected
