"""Real calls over 127.0.0.1: a listening WorkerPool (the callee) and a dialing one (the robot).

Every pool binds free ports, and every test checks that its worker processes are gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

pytest.importorskip("pjsua2")

from telephony import (
    CallEvent,
    CallHandle,
    CallState,
    DialRequest,
    Disposition,
    Dtmf,
    InboundCall,
    PlayoutCleared,
    PlayoutMark,
    PoolBusyError,
    Progress,
    WorkerPool,
    WorkerStartError,
)

pytestmark = pytest.mark.sip

STEP_S = 5.0  # upper bound for any single signalling step on loopback


# --- helpers (also used by test_telephony_fake.py) --------------------------------------


def tone(freq: float, seconds: float, amp: int = 8000) -> bytes:
    t = np.arange(int(8000 * seconds)) / 8000
    return (np.sin(2 * np.pi * freq * t) * amp).astype("<i2").tobytes()


def dominant_hz(pcm: bytes) -> float:
    x = np.frombuffer(pcm, "<i2").astype(float)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum)) * 8000 / len(x)


def free_udp_port(count: int = 1) -> int:
    """A port p such that p .. p+count-1 are free for UDP on loopback right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + count > 65535:
            continue
        try:
            socks = []
            for p in range(base, base + count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(sock)
                sock.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no free UDP port range")


async def next_event(call: CallHandle) -> CallEvent:
    return await asyncio.wait_for(anext(aiter(call.events())), STEP_S)


async def wait_progress(call: CallHandle, state: CallState) -> Progress:
    """Skip events until Progress(state); fail on an earlier ENDED."""
    async with asyncio.timeout(STEP_S):
        async for ev in call.events():
            if isinstance(ev, Progress) and (ev.state is state or ev.state is CallState.ENDED):
                assert ev.state is state, f"expected {state}, got {ev}"
                return ev
    raise AssertionError(f"events ended before {state}")


async def ended(call: CallHandle) -> Progress:
    return await wait_progress(call, CallState.ENDED)


async def record(call: CallHandle, seconds: float) -> bytes:
    want = int(seconds * 16000)
    buf = bytearray()
    async with asyncio.timeout(seconds + STEP_S):
        async for frame in call.audio():
            buf += frame
            if len(buf) >= want:
                break
    return bytes(buf)


def callee_uri(callee: WorkerPool, user: str = "13800000001", index: int = 0) -> str:
    return f"sip:{user}@127.0.0.1:{callee.sip_ports[index]}"


async def connect(
    robot: WorkerPool, callee: WorkerPool, user: str = "13800000001", **dial: Any
) -> tuple[CallHandle, InboundCall]:
    call = await robot.dial(DialRequest(uri=callee_uri(callee, user), **dial))
    inbound = await asyncio.wait_for(callee.incoming(), STEP_S)
    assert (await wait_progress(call, CallState.RINGING)).sip_code == 180
    await inbound.answer()
    await wait_progress(call, CallState.ANSWERED)
    await wait_progress(inbound, CallState.ANSWERED)
    return call, inbound


def assert_gone(pids: list[int]) -> None:
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}"), f"worker {pid} left behind"


@contextlib.asynccontextmanager
async def running_pool(**kw: Any) -> AsyncIterator[WorkerPool]:
    """A started WorkerPool; on exit it is closed and its worker processes must be gone."""
    pool = WorkerPool(**kw)
    await pool.start()
    seen = {p for p in pool.worker_pids if p}
    try:
        yield pool
        seen |= {p for p in pool.worker_pids if p}
    finally:
        await pool.close()
        assert_gone(sorted(seen))


@pytest.fixture
async def callee() -> AsyncIterator[WorkerPool]:
    async with running_pool(listen=True) as pool:
        yield pool


@pytest.fixture
async def robot() -> AsyncIterator[WorkerPool]:
    async with running_pool() as pool:
        yield pool


# --- tests -------------------------------------------------------------------------------


async def test_audio_both_ways_marks_clear_dtmf_and_robot_hangup(
    robot: WorkerPool, callee: WorkerPool
) -> None:
    call, inbound = await connect(robot, callee)
    assert inbound.to_user == "13800000001"
    assert inbound.from_uri.startswith("sip:robot@127.0.0.1")

    sent_at = time.monotonic()
    call.send_audio(tone(440, 1.5))
    call.mark("greeting")
    inbound.send_audio(tone(1000, 1.5))
    heard_by_callee, heard_by_robot = await asyncio.gather(record(inbound, 1.0), record(call, 1.0))
    assert abs(dominant_hz(heard_by_callee[6400:]) - 440) < 15
    assert abs(dominant_hz(heard_by_robot[6400:]) - 1000) < 15

    assert await next_event(call) == PlayoutMark("greeting")
    assert 1.3 < time.monotonic() - sent_at < 3.0  # after 1.5 s of playout, not before

    call.send_audio(tone(440, 5.0))
    call.mark("never")  # dropped by the clear below
    await asyncio.sleep(0.3)
    call.clear_audio()
    cleared = await next_event(call)
    assert isinstance(cleared, PlayoutCleared)
    assert 4000 <= cleared.dropped_ms <= 4900
    call.mark("after-clear")
    assert await next_event(call) == PlayoutMark("after-clear")

    call.send_dtmf("1#")
    assert [await next_event(inbound), await next_event(inbound)] == [Dtmf("1"), Dtmf("#")]

    await call.hangup()
    assert call.ended == Progress(CallState.ENDED, 200, "OK", Disposition.COMPLETED, "local")
    far = await ended(inbound)
    assert (far.end_reason, far.hangup_by) == (Disposition.COMPLETED, "remote")
    async with asyncio.timeout(1):  # the audio stream ends with the call (after its backlog)
        assert all(len(f) == 320 for f in [f async for f in call.audio()])


async def test_callee_hangs_up(robot: WorkerPool, callee: WorkerPool) -> None:
    call, inbound = await connect(
        robot, callee, username="robot", password="secret", headers={"X-Campaign": "demo"}
    )
    await inbound.hangup()
    assert inbound.ended is not None
    assert (inbound.ended.end_reason, inbound.ended.hangup_by) == (Disposition.COMPLETED, "local")
    end = await ended(call)
    assert (end.end_reason, end.hangup_by, end.sip_code) == (Disposition.COMPLETED, "remote", 200)
    await call.hangup()  # idempotent after the end


async def test_busy(robot: WorkerPool, callee: WorkerPool) -> None:
    call = await robot.dial(DialRequest(uri=callee_uri(callee)))
    inbound = await asyncio.wait_for(callee.incoming(), STEP_S)
    await wait_progress(call, CallState.RINGING)
    await inbound.reject(486)
    end = await ended(call)
    assert (end.end_reason, end.sip_code, end.hangup_by) == (Disposition.BUSY, 486, "remote")
    assert inbound.ended is not None
    assert (inbound.ended.end_reason, inbound.ended.hangup_by) == (Disposition.BUSY, "local")


async def test_ring_timeout_is_no_answer(robot: WorkerPool, callee: WorkerPool) -> None:
    call = await robot.dial(DialRequest(uri=callee_uri(callee), ring_timeout_s=0.8))
    inbound = await asyncio.wait_for(callee.incoming(), STEP_S)
    end = await ended(call)
    assert (end.end_reason, end.hangup_by, end.reason) == (
        Disposition.NO_ANSWER,
        "local",
        "ring timeout",
    )
    far = await ended(inbound)  # the caller cancelled before we answered
    assert (far.end_reason, far.hangup_by) == (Disposition.NO_ANSWER, "remote")


async def test_unreachable_and_bad_uri_fail_fast(robot: WorkerPool) -> None:
    started = time.monotonic()
    nobody = f"sip:13800000001@127.0.0.1:{free_udp_port()}"
    call = await robot.dial(DialRequest(uri=nobody, ring_timeout_s=1.0))
    end = await ended(call)
    assert end.end_reason is Disposition.FAILED
    assert time.monotonic() - started < 3.0

    bad = await robot.dial(DialRequest(uri="not a sip uri"))
    assert (await ended(bad)).end_reason is Disposition.FAILED
    assert robot.free_slots == robot.capacity  # nothing leaked, the worker is still fine


async def test_worker_killed_mid_call_is_worker_lost_and_restarted(
    robot: WorkerPool, callee: WorkerPool
) -> None:
    call, inbound = await connect(robot, callee)
    old_pid = robot.worker_pids[0]
    assert old_pid is not None
    os.kill(old_pid, signal.SIGKILL)
    end = await ended(call)
    assert end.end_reason is Disposition.WORKER_LOST
    await inbound.hangup()  # nobody will send the callee a BYE
    await assert_replaced_and_working(robot, callee, old_pid)


async def assert_replaced_and_working(robot: WorkerPool, callee: WorkerPool, old_pid: int) -> None:
    """Worker 0 was lost: a new process takes its slots, the old one is gone, calls work."""
    async with asyncio.timeout(STEP_S):
        while robot.free_slots < robot.capacity:  # noqa: ASYNC110 - polling the pool is the point
            await asyncio.sleep(0.05)
    assert robot.worker_pids[0] not in (None, old_pid)
    assert_gone([old_pid])
    call, inbound = await connect(robot, callee)
    await call.hangup()
    assert (await ended(inbound)).end_reason is Disposition.COMPLETED


async def test_hung_worker_is_killed_and_restarted(callee: WorkerPool) -> None:
    """SIGSTOP freezes the worker (a stuck pjsua2 loop): its pongs stop, the watchdog kills it
    after hang_timeout_s, the call ends as worker_lost and a fresh worker takes calls."""
    async with running_pool(heartbeat_s=0.2, hang_timeout_s=1.5) as robot:
        call, inbound = await connect(robot, callee)
        await asyncio.sleep(0.6)  # several heartbeats answered: a healthy worker is left alone
        assert robot.worker_pids[0] is not None and call.ended is None
        frozen = robot.worker_pids[0]
        assert frozen is not None
        os.kill(frozen, signal.SIGSTOP)
        t0 = time.monotonic()
        end = await ended(call)
        assert end.end_reason is Disposition.WORKER_LOST and "unresponsive" in end.reason
        assert 1.0 < time.monotonic() - t0 < 1.5 + 2.0
        await inbound.hangup()
        await assert_replaced_and_working(robot, callee, frozen)


async def test_a_stalled_event_loop_does_not_kill_a_healthy_worker(callee: WorkerPool) -> None:
    """The brain's own loop blocked past hang_timeout_s (a lazy import on the loop): the
    worker's pongs wait unread in the pipe, and it is not killed for it."""
    async with running_pool(heartbeat_s=0.2, hang_timeout_s=1.0) as robot:
        call, inbound = await connect(robot, callee)
        pid = robot.worker_pids[0]
        time.sleep(2.0)  # noqa: ASYNC251 - blocking the loop is the point
        await asyncio.sleep(1.0)  # several heartbeats after the stall
        assert call.ended is None and robot.worker_pids[0] == pid
        await call.hangup()
        assert (await ended(inbound)).end_reason is Disposition.COMPLETED


async def test_slots_busy_raises_and_close_hangs_up_live_calls(callee: WorkerPool) -> None:
    async with running_pool(calls_per_worker=2) as robot:
        a, ia = await connect(robot, callee)
        b, ib = await connect(robot, callee)
        assert robot.free_slots == 0
        with pytest.raises(PoolBusyError):
            await robot.dial(DialRequest(uri=callee_uri(callee)))
        await robot.close()
        for call in (a, b):
            assert call.ended is not None
            assert (call.ended.end_reason, call.ended.hangup_by) == (Disposition.COMPLETED, "local")
        for inbound in (ia, ib):
            assert (await ended(inbound)).hangup_by == "remote"


async def test_fixed_consecutive_ports_and_four_calls_on_one_worker() -> None:
    base = free_udp_port(2)
    async with running_pool(listen=True, processes=2, sip_port=base) as callee:
        assert callee.sip_ports == [base, base + 1]
        async with running_pool() as robot:
            pairs = []
            for i in range(4):
                call = await robot.dial(
                    DialRequest(uri=callee_uri(callee, f"1380000000{i}", i % 2))
                )
                inbound = await asyncio.wait_for(callee.incoming(), STEP_S)
                assert inbound.to_user == f"1380000000{i}"
                await inbound.answer()
                await wait_progress(call, CallState.ANSWERED)
                pairs.append((call, inbound))
            for i, (_, inbound) in enumerate(pairs):
                inbound.send_audio(tone(500 + 200 * i, 1.0))
            heard = await asyncio.gather(*(record(call, 0.8) for call, _ in pairs))
            for i, pcm in enumerate(heard):
                assert abs(dominant_hz(pcm[6400:]) - (500 + 200 * i)) < 15
            for call, _ in pairs:
                await call.hangup()


async def test_start_fails_cleanly_when_the_sip_port_is_taken() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        pool = WorkerPool(processes=2, sip_port=taken.getsockname()[1] - 1)
        with pytest.raises(WorkerStartError):
            await pool.start()
    assert pool.worker_pids == [None, None]
    assert not [
        pid for pid in os.listdir("/proc") if pid.isdigit() and _is_worker_of_this_test(int(pid))
    ]


def _is_worker_of_this_test(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().split(b"\0")
        with open(f"/proc/{pid}/stat") as f:
            ppid = int(f.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return False
    return b"telephony.worker" in cmd and ppid == os.getpid()


async def test_a_pool_that_does_not_listen_rejects_inbound_calls(robot: WorkerPool) -> None:
    async with running_pool() as deaf:
        with pytest.raises(RuntimeError):
            await deaf.incoming()
        call = await robot.dial(DialRequest(uri=callee_uri(deaf)))
        end = await ended(call)
        assert (end.end_reason, end.sip_code, end.hangup_by) == (
            Disposition.REJECTED,
            403,
            "remote",
        )
        assert deaf.free_slots == deaf.capacity
