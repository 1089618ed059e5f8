"""Robot lines on a call: the Playback handle, and streaming through the prompt cache.

A cached line goes out in one piece; a new one starts playing after its first clause while the
rest is synthesised (and cached); barge-in stops the sending and the synthesis of the rest."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest

from callflow.bargein import BargeInPolicy
from callflow.machine import Say
from callflow.personal import render
from callflow.playback import Playback
from callflow.results import SessionResult
from callflow.script import Script
from callflow.script_parse import load_script
from callflow.session import CallSession
from nlu.base import INTENTS
from nlu.fake import FakeClassifier
from speech.asr.fake import FakeStreamAsr, utterance
from speech.cache import PromptCache
from speech.tts.fake import FakeStreamingTts, FakeTts
from speech.tts.frames import split_clauses
from telephony.base import CallHandle, DialRequest, PlayoutCleared, PlayoutMark
from telephony.fake import FakeCall, FakeTelephony


@pytest.fixture
def script() -> Script:
    return load_script("callflow/scripts/saas_demo.yaml", known_intents=INTENTS)


def neutral_greeting(script: Script) -> str:
    """The greeting as a lead with no fields hears it (its ``{lead.title|}`` left out)."""
    return render(script.states[script.start].say, lead={}, slots={}, fallbacks=script.fallbacks)


async def wait_for(cond: Callable[[], bool], within_s: float = 5.0) -> None:
    async with asyncio.timeout(within_s):
        while not cond():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


class Line:
    """One call on the fake telephony (robot audio plays only when the test advances it),
    with every `send_audio` chunk recorded."""

    def __init__(
        self,
        script: Script,
        prompts: PromptCache,
        asr: FakeStreamAsr,
        barge_in: BargeInPolicy | None = None,
    ) -> None:
        self.script, self.prompts, self.asr = script, prompts, asr
        self.barge_in = barge_in
        self.tel = FakeTelephony(auto_play=False)
        self.sent: list[int] = []  # sizes of the chunks sent, in order

    async def start(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> tuple[FakeCall, asyncio.Task[SessionResult]]:
        call = await self.tel.dial(DialRequest("sip:1@sim"))
        send = call.send_audio

        def record(pcm: bytes) -> None:
            self.sent.append(len(pcm))
            send(pcm)

        monkeypatch.setattr(call, "send_audio", record)
        session = CallSession(
            call=call, script=self.script, asr=self.asr, nlu=FakeClassifier(),
            prompts=self.prompts, max_call_s=10, barge_in=self.barge_in,
        )  # fmt: skip
        return call, asyncio.create_task(session.run())


async def test_a_new_line_plays_before_it_is_fully_synthesised(
    tmp_path: Path, script: Script, monkeypatch: pytest.MonkeyPatch
) -> None:
    tts = FakeStreamingTts(clause_s=0.2)
    line = Line(script, PromptCache(tts, tmp_path), FakeStreamAsr())
    call, run = await line.start(monkeypatch)
    greeting = neutral_greeting(script)
    clauses = split_clauses(greeting)
    await wait_for(lambda: call.queued_ms > 0)
    assert clauses[-1] not in tts.rendered  # first audio is out; the line is still rendering
    assert line.sent[0] == 320  # frame by frame
    await wait_for(lambda: line.prompts.contains(greeting))
    assert tts.rendered == clauses and tts.cancelled == []
    assert sum(line.sent) == len(await line.prompts.get(greeting))  # all of it was sent
    call.remote_hangup()
    res = await run
    assert res.turns[0].text == greeting and res.turns[0].interrupted is False


async def test_a_cached_line_goes_out_in_one_piece(
    tmp_path: Path, script: Script, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompts = PromptCache(FakeTts(), tmp_path)
    greeting = neutral_greeting(script)
    await prompts.prefetch([greeting])
    line = Line(script, prompts, FakeStreamAsr())
    call, run = await line.start(monkeypatch)
    await wait_for(lambda: call.queued_ms > 0)
    assert line.sent == [len(await prompts.get(greeting))]
    call.remote_hangup()
    await run


async def test_barge_in_stops_sending_and_synthesis_mid_line(
    tmp_path: Path, script: Script, monkeypatch: pytest.MonkeyPatch
) -> None:
    tts = FakeStreamingTts(clause_s=0.2)
    asr = FakeStreamAsr([utterance("你是谁", 0.02, 0.6, endpoint_s=0.3)])
    stop_at_onset = BargeInPolicy(backchannel_max_s=0)  # no pause: cut at the onset
    line = Line(script, PromptCache(tts, tmp_path), asr, stop_at_onset)
    call, run = await line.start(monkeypatch)
    greeting = neutral_greeting(script)
    await wait_for(lambda: call.queued_ms > 0)
    call.advance(100)  # the callee hears 0.1 s, then starts talking
    call.push_audio(bytes(320 * 5))
    await wait_for(lambda: bool(tts.cancelled))  # the clause in flight is dropped
    sent = sum(line.sent)
    await asyncio.sleep(0.6)  # longer than the rest of the line would take to render
    assert sum(line.sent) == sent < len(tts.render(greeting))
    assert split_clauses(greeting)[-1] not in tts.rendered
    assert not line.prompts.contains(greeting)  # a cut line is not cached
    call.remote_hangup()
    res = await run
    assert res.turns[0].interrupted is True and res.turns[0].detail["heard_ms"] == 100


# ---- the handle on its own -------------------------------------------------------------------


class _Call:
    """Just enough of a CallHandle for the handle's bookkeeping."""

    def __init__(self) -> None:
        self.cleared = 0
        self.ended: object = None

    def clear_audio(self) -> None:
        self.cleared += 1


def playback(say: Say) -> tuple[Playback, _Call, list[Playback]]:
    call, finished = _Call(), list[Playback]()
    pb = Playback(
        cast(CallHandle, call), say, on_started=lambda _: None, on_finished=finished.append
    )
    return pb, call, finished


async def test_handle_reports_how_much_was_heard() -> None:
    pb, call, finished = playback(Say(1, "你好"))
    pb.sent_bytes = 16000  # 1 s queued
    assert pb.interrupt() and call.cleared == 1 and not pb.done
    pb.on_playout(PlayoutCleared(dropped_ms=600))
    assert finished == [pb] and pb.heard_ms == 400 and await pb.wait_for_playout() is True
    pb.on_playout(PlayoutMark("say1"))  # late reports change nothing
    assert finished == [pb] and not pb.interrupt()


async def test_handle_settles_at_once_when_cut_before_any_audio() -> None:
    pb, call, finished = playback(Say(2, "你好"))
    assert pb.interrupt() and call.cleared == 0  # nothing queued: nothing to clear
    assert finished == [pb] and pb.interrupted and pb.heard_ms is None


async def test_a_line_paused_before_any_audio_unholds_the_call_when_cut() -> None:
    pb, call, finished = playback(Say(4, "你好"))
    resumed: list[bool] = []
    call.pause_audio = lambda: None  # type: ignore[attr-defined]
    call.resume_audio = lambda: resumed.append(True)  # type: ignore[attr-defined]
    assert pb.pause(onset=1.0) and pb.interrupt()
    assert resumed == [True] and call.cleared == 0 and finished == [pb]


async def test_uninterruptible_line_is_not_cut() -> None:
    pb, call, finished = playback(Say(3, "再见", interruptible=False))
    assert not pb.allow_interruptions and not pb.interrupt() and call.cleared == 0
    pb.on_playout(PlayoutMark("say2"))  # another line's mark
    assert not pb.done
    pb.on_playout(PlayoutMark("say3"))
    assert finished == [pb] and await pb.wait_for_playout() is False
