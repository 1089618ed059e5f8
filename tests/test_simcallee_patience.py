"""The simulated callee's patience counts only the robot's silence: a robot line longer than the
patience is listened to the end and answered; a robot that stays silent is given up on. And the
timing it keeps for bench/load.py (its speech as it went out, the robot audio it received)."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import pytest

from simcallee.callee import CallReport, Persona, SimulatedCallee, speech_span
from speech.audio import silence
from speech.vad import Endpointer
from telephony.fake import FakeInboundCall, FakeTelephony

NUMBER = "13800000001"
PATIENCE_S = 1.0

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")


class Voice:
    """The callee's voice: every line is 0.4 s of silence (what it says does not matter)."""

    async def get(self, text: str) -> bytes:
        return silence(0.4)


async def _robot_line(seconds: float) -> bytes:
    from speech.tts.espeak import EspeakTts

    text = "您好，我是云启科技的智能助理小安，想给您介绍一下我们的智能客服系统，您现在方便吗？"
    pcm = await EspeakTts(speed=150).synthesize(text)
    assert len(pcm) >= seconds * 16000, "the robot line must outlast the patience"
    return pcm[: int(seconds * 16000)]


async def _speak(call: FakeInboundCall, pcm: bytes) -> None:
    """The robot's audio reaches the callee in real time, 20 ms a frame."""
    for i in range(0, len(pcm), 320):
        call.push_audio(pcm[i : i + 320])
        await asyncio.sleep(0.02)


async def _serve(tel: FakeTelephony, tmp: Path) -> tuple[SimulatedCallee, asyncio.Task[None]]:
    callee = SimulatedCallee(
        telephony=tel,
        personas={NUMBER: Persona("p", lines=("好的",), ring_ms=0, linger_s=0.2)},
        default=Persona("unknown", reject=404),
        voice=Voice(),
        make_endpointer=lambda: Endpointer(end_silence_ms=300),
        recordings_dir=tmp,
        robot_silence_timeout_s=PATIENCE_S,
    )
    return callee, asyncio.create_task(callee.serve())


async def _report(callee: SimulatedCallee, within_s: float) -> CallReport:
    deadline = time.monotonic() + within_s
    while not (callee.reports and callee.reports[0].recording):
        assert time.monotonic() < deadline, "the callee did not finish the call"
        await asyncio.sleep(0.05)
    return callee.reports[0]


@needs_espeak
async def test_a_robot_line_longer_than_the_patience_is_heard_out_and_answered(
    tmp_path: Path,
) -> None:
    tel = FakeTelephony()
    callee, serving = await _serve(tel, tmp_path)
    try:
        call = tel.ring_in(NUMBER)
        await _speak(call, await _robot_line(2.5 * PATIENCE_S))
        await _speak(call, silence(0.6))  # the robot stops: the callee answers
        report = await _report(callee, 5)
    finally:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)
    assert report.lines_spoken == ["好的"] and not report.gave_up
    assert report.robot_audio and report.robot_audio[0][1] - report.robot_audio[0][0] > 2.0
    assert report.frames >= 140  # 3.1 s pushed, counted until the callee stopped listening


async def test_a_silent_robot_is_given_up_on_after_the_patience(tmp_path: Path) -> None:
    tel = FakeTelephony()
    callee, serving = await _serve(tel, tmp_path)
    try:
        call = tel.ring_in(NUMBER)
        t0 = time.monotonic()
        await _speak(call, silence(0.3))
        report = await _report(callee, 5)
    finally:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)
    assert report.gave_up and report.lines_spoken == []
    assert time.monotonic() - t0 >= PATIENCE_S


def test_speech_span_finds_the_loud_part() -> None:
    tone = (b"\x00\x10" * 160) * 10  # 200 ms of loud frames
    assert speech_span(silence(0.1) + tone + silence(0.3)) == pytest.approx((0.1, 0.3))
    assert speech_span(silence(0.2)) == (0.0, 0.0)
