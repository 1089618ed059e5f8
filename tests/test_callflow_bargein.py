"""Barge-in, backchannels, non-interruptible parts and silence, on the stream clock.

A `CallSession` on the fake telephony (robot audio plays only when a test advances it), the
scripted stream recognizer (its events fire as the callee's audio is pushed) and the keyword
NLU: each test is a timeline ("the robot has played 0.5 s; the callee says 嗯 for 0.3 s") and
asserts what the callee heard and what the turn records say."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from callflow.bargein import BargeInPolicy, parse_backchannels
from callflow.machine import DialogState, NoInput, Say, UserSaid, step
from callflow.results import SessionResult, TurnRecord
from callflow.script import Script, ScriptError
from callflow.script_parse import parse_script
from callflow.session import CallSession
from core.audio import pcm_ms
from nlu.base import INTENTS
from nlu.fake import FakeClassifier
from speech.asr.fake import FakeStreamAsr, utterance
from speech.cache import PromptCache
from speech.tts.fake import FakeTts
from telephony.base import DialRequest
from telephony.fake import FakeCall, FakeTelephony
from telephony.media import Playout

FRAME = bytes(320)
POLICY = BargeInPolicy(backchannel_max_s=0.5, final_wait_s=0.3)
DISCLOSURE = "您好，我是云启科技的AI语音助手，本次通话可能会被录音。"
PITCH = "想给您介绍一下我们的智能客服系统，它可以自动接听电话，二十四小时在线，您现在方便吗？"
PRICE = "标准版每个坐席每月三百元，现在签约还有八折优惠，我们安排顾问给您做个免费演示好吗？"
IDENTITY = "我是云启科技的智能语音助理，是一个AI机器人。"


def make_script(greeting: Any = PITCH, silence: dict[str, Any] | None = None) -> Script:
    data: dict[str, Any] = {
        "name": "t",
        "start": "greeting",
        "max_retries": 1,
        "reprompt": "不好意思，我没有听清楚。",
        "global": {"ask_identity": {"say": IDENTITY}, "ask_price": "price"},
        "states": {
            "greeting": {"say": greeting, "on": {"affirm": "end_ok"}},
            "price": {"say": PRICE, "on": {"affirm": "end_ok"}},
            "end_ok": {"say": "好的，再见。", "end": "qualified", "grade": "A"},
            "end_no_response": {"say": "再见。", "end": "no_response"},
        },
    }
    if silence is not None:
        data["silence"] = silence
    return parse_script(data, source="t.yaml", known_intents=INTENTS)


class Rig:
    """One call on the fake telephony with a session running on it."""

    def __init__(
        self, tmp_path: Path, script: Script, *timelines: Any, no_input_s: float = 5
    ) -> None:
        self.tts = FakeTts()
        self.prompts = PromptCache(self.tts, tmp_path / "cache")
        self.asr = FakeStreamAsr(list(timelines))
        self.nlu = FakeClassifier()
        self.tel = FakeTelephony(auto_play=False)
        self.script = script
        self.no_input_s = no_input_s
        self.call: FakeCall
        self.audio: dict[str, bytes] = {}
        self.run: asyncio.Task[SessionResult]

    async def start(self, *, wait: bool = True) -> FakeCall:
        await self.prompts.prefetch(self.script.lines())
        self.audio = {text: await self.prompts.get(text) for text in self.script.lines()}
        self.call = await self.tel.dial(DialRequest("sip:1@sim"))
        session = CallSession(
            call=self.call, script=self.script, asr=self.asr, nlu=self.nlu,
            prompts=self.prompts, max_call_s=20, no_input_timeout_s=self.no_input_s,
            barge_in=POLICY,
        )  # fmt: skip
        self.run = asyncio.create_task(session.run())
        if wait:  # until the greeting is queued
            await wait_for(lambda: self.call.queued_ms > 0)
        return self.call

    def speak(self, seconds: float) -> None:
        """The callee's audio, pushed at once (the recognizer's clock runs on it)."""
        self.call.push_audio(FRAME * round(seconds * 50))

    def ms(self, text: str) -> int:
        """How long the robot's line `text` plays."""
        return pcm_ms(len(self.audio[text]))

    async def end(self) -> SessionResult:
        self.call.remote_hangup()
        return await asyncio.wait_for(self.run, 5)


async def wait_for(cond: Callable[[], bool], within_s: float = 5.0) -> None:
    async with asyncio.timeout(within_s):
        while not cond():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


def robot(res: SessionResult) -> list[TurnRecord]:
    return [t for t in res.turns if t.speaker == "robot"]


def callee(res: SessionResult) -> list[TurnRecord]:
    return [t for t in res.turns if t.speaker == "callee"]


# ---- the call, on the stream clock -------------------------------------------------------


async def test_barge_in_during_a_prompt_stops_it_and_keeps_only_what_was_played(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path, make_script(), utterance("你是谁", 0.0, 1.2, endpoint_s=0.2))
    call = await rig.start()
    call.advance(500)
    rig.speak(0.3)  # the onset: the robot pauses at once, the rest of its line held
    await wait_for(lambda: call.paused)
    heard = len(call.played)
    call.advance(400)
    assert len(call.played) == heard  # nothing more goes out while paused
    rig.speak(1.2)  # 1.2 s of speech: a real barge-in
    await wait_for(lambda: call.queued_ms == rig.ms(IDENTITY))
    assert not call.paused  # the reply is all that is queued: no leftovers of the greeting
    res = await rig.end()
    greeting, answer = robot(res)[:2]
    assert greeting.interrupted is True and greeting.detail["heard_ms"] == 500
    assert greeting.detail["barge_in"] == ["long"] and greeting.detail["line"] == PITCH
    assert greeting.text and PITCH.startswith(greeting.text) and len(greeting.text) < len(PITCH)
    assert greeting.detail["stop_ms"][0] >= 0
    (said,) = callee(res)
    assert said.intent == "ask_identity" and answer.text == IDENTITY


async def test_backchannel_during_a_prompt_lets_the_robot_go_on(tmp_path: Path) -> None:
    rig = Rig(tmp_path, make_script(), utterance("嗯嗯", 0.0, 0.3, endpoint_s=0.2))
    call = await rig.start()
    call.advance(500)
    rig.speak(0.1)
    await wait_for(lambda: call.paused)
    call.advance(200)
    assert len(call.played) == 8000  # held: 0.5 s played, nothing more
    rig.speak(0.5)  # the speech ends at 0.3 s; its words (嗯嗯) come at 0.5 s
    await wait_for(lambda: not call.paused)
    call.advance_all()  # the greeting plays on to its end
    await asyncio.sleep(0.05)
    res = await rig.end()
    (greeting,) = robot(res)
    assert greeting.interrupted is False and greeting.detail["backchannels"] == ["嗯嗯"]
    assert callee(res) == []  # not a turn
    assert len(call.played) == len(rig.audio[PITCH])  # every byte, none twice


async def test_short_words_that_are_not_a_backchannel_stop_the_robot(tmp_path: Path) -> None:
    rig = Rig(tmp_path, make_script(), utterance("多少钱", 0.0, 0.4, endpoint_s=0.2))
    call = await rig.start()
    call.advance(300)
    rig.speak(0.7)
    await wait_for(lambda: call.queued_ms == rig.ms(PRICE))
    res = await rig.end()
    greeting, price = robot(res)[:2]
    assert greeting.interrupted is True and greeting.detail["barge_in"] == ["speech"]
    assert greeting.detail["heard_ms"] == 300 and price.text == PRICE
    assert [t.intent for t in callee(res)] == ["ask_price"]


async def test_barge_in_during_a_non_interruptible_part_plays_through(tmp_path: Path) -> None:
    parts = [{"text": DISCLOSURE, "interruptible": False}, PITCH]
    rig = Rig(
        tmp_path,
        make_script(greeting=parts),
        utterance("嗯", 0.0, 0.2, endpoint_s=0.1),
        # a second utterance, after the disclosure: stream time runs on across both
    )
    call = await rig.start()
    await wait_for(lambda: call.queued_ms >= rig.ms(DISCLOSURE) + rig.ms(PITCH))
    call.advance(300)
    rig.speak(0.5)  # 嗯 over the disclosure: no pause, and no turn
    await asyncio.sleep(0.1)
    assert not call.paused
    call.advance(rig.ms(DISCLOSURE))  # the disclosure, to its end
    await asyncio.sleep(0.05)
    res = await rig.end()
    (greeting,) = robot(res)
    assert greeting.text == DISCLOSURE + PITCH and greeting.interrupted is False
    assert greeting.detail["backchannels"] == ["嗯"] and callee(res) == []


async def test_words_during_a_locked_part_play_through_and_are_a_turn(tmp_path: Path) -> None:
    parts = [{"text": DISCLOSURE, "interruptible": False}, PITCH]
    rig = Rig(tmp_path, make_script(greeting=parts), utterance("你是谁", 0.0, 1.0, endpoint_s=0.2))
    call = await rig.start()
    await wait_for(lambda: call.queued_ms >= rig.ms(DISCLOSURE) + rig.ms(PITCH))
    call.advance(200)
    rig.speak(1.5)  # a question over the disclosure: no pause, no cut
    await wait_for(lambda: call.queued_ms > rig.ms(DISCLOSURE) + rig.ms(PITCH))
    assert not call.paused and len(call.played) == 3200
    call.advance_all()  # the greeting, then the answer queued behind it
    await asyncio.sleep(0.05)
    res = await rig.end()
    greeting, answer = robot(res)[:2]
    assert greeting.interrupted is False and answer.text == IDENTITY
    assert [t.intent for t in callee(res)] == ["ask_identity"]


async def test_speech_after_the_locked_part_pauses_the_rest(tmp_path: Path) -> None:
    parts = [{"text": DISCLOSURE, "interruptible": False}, PITCH]
    rig = Rig(tmp_path, make_script(greeting=parts), utterance("你是谁", 0.0, 1.0, endpoint_s=0.2))
    call = await rig.start()
    await wait_for(lambda: call.queued_ms >= rig.ms(DISCLOSURE) + rig.ms(PITCH))
    locked = rig.ms(DISCLOSURE)
    call.advance(locked + 200)  # the disclosure was heard; the pitch is playing
    await asyncio.sleep(0.02)
    rig.speak(0.1)
    await wait_for(lambda: call.paused)
    rig.speak(1.4)
    await wait_for(lambda: call.queued_ms == rig.ms(IDENTITY))
    res = await rig.end()
    greeting = robot(res)[0]
    assert greeting.interrupted is True and greeting.detail["heard_ms"] == locked + 200
    assert greeting.text.startswith(DISCLOSURE) and greeting.text != DISCLOSURE + PITCH


async def test_a_long_monologue_stops_the_robot_while_the_callee_still_talks(
    tmp_path: Path,
) -> None:
    monologue = (
        "我跟你说我们公司已经用了好几年别家的系统了，用得挺好的，暂时不考虑换，你们就别费劲了"
    )
    rig = Rig(
        tmp_path, make_script(), utterance(monologue, 0.0, 6.0, endpoint_s=0.3), no_input_s=0.2
    )
    call = await rig.start()
    call.advance(400)
    rig.speak(0.2)
    await wait_for(lambda: call.paused)
    # the speech has not ended, but it is longer than a backchannel: cut (on the wall clock)
    await wait_for(lambda: call.queued_ms == 0 and not call.paused, within_s=2)
    for _ in range(13):  # 6.5 s more of the monologue, over 0.65 s
        rig.speak(0.5)
        await asyncio.sleep(0.05)
    await wait_for(lambda: call.queued_ms > 0)  # the reply to the whole monologue
    res = await rig.end()
    greeting = robot(res)[0]
    assert greeting.interrupted is True and greeting.detail["heard_ms"] == 400
    assert greeting.detail["barge_in"] == ["long"]
    assert [t.text for t in callee(res)] == [monologue]
    assert all(t.detail.get("kind") != "silence" for t in robot(res))


async def test_an_interrupted_reply_leaves_nothing_behind_for_the_next(tmp_path: Path) -> None:
    timeline = [
        *utterance("你是谁", 0.0, 1.0, endpoint_s=0.2),
        *utterance("多少钱", 3.0, 4.2, endpoint_s=0.2),
    ]
    rig = Rig(tmp_path, make_script(), timeline)
    call = await rig.start()
    call.advance(200)
    rig.speak(1.5)  # first question: the greeting is cut, the identity answer queued
    identity = rig.ms(IDENTITY)
    await wait_for(lambda: call.queued_ms == identity)
    call.advance(300)  # the callee hears 0.3 s of the answer, then asks something else
    rig.speak(3.0)
    await wait_for(lambda: call.queued_ms == rig.ms(PRICE))
    res = await rig.end()
    greeting, answer, price = robot(res)[:3]
    assert answer.interrupted is True and answer.detail["heard_ms"] == 300
    assert price.text == PRICE
    assert [t.intent for t in callee(res)] == ["ask_identity", "ask_price"]
    # every queued byte after the cut is the new reply's: the callee hears it from its start
    call.advance_all()
    price_pcm = rig.audio[PRICE]
    assert bytes(call.played[-len(price_pcm) :]) == price_pcm
    assert len(call.played) == 3200 + 4800 + len(price_pcm)


async def test_the_latency_the_callee_hears_is_stamped_when_the_reply_plays(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path, make_script(), utterance("多少钱", 0.0, 0.4, endpoint_s=0.2))
    call = await rig.start()
    call.advance_all()
    await asyncio.sleep(0.05)
    rig.speak(0.7)
    await wait_for(lambda: call.queued_ms > 0)
    await asyncio.sleep(0.2)  # the reply waits in the queue: the callee hears it later
    call.advance(100)
    await asyncio.sleep(0.05)
    res = await rig.end()
    (said,) = callee(res)
    assert said.latency_ms is not None
    assert said.detail["heard_latency_ms"] >= said.latency_ms + 150


# ---- silence -----------------------------------------------------------------------------


async def test_silence_gets_a_prompt_then_a_polite_goodbye(tmp_path: Path) -> None:
    silence = {"prompt": "您还在听吗？", "max": 1, "goodbye": "那先不打扰您了，再见。"}
    rig = Rig(tmp_path, make_script(silence=silence), no_input_s=0.05)
    rig.tel.auto_play = True
    call = await rig.start(wait=False)
    res = await asyncio.wait_for(rig.run, 5)
    lines = [(t.text, t.detail.get("kind")) for t in robot(res)]
    assert lines == [
        (PITCH, None),
        ("您还在听吗？", "silence"),
        ("那先不打扰您了，再见。", "silence_goodbye"),
    ]
    assert res.outcome == "no_response" and call.ended is not None
    assert call.ended.hangup_by == "local"


def test_silence_is_its_own_path_in_the_machine() -> None:
    script = make_script(silence={"max": 2})
    state, _ = step(script, DialogState(), NoInput())  # before the answer: nothing
    from callflow.machine import Answered

    state, _ = step(script, state, Answered())
    said: list[Say] = []
    for event in (NoInput(), UserSaid("other", 0.9, "啊？"), NoInput(), NoInput(), NoInput()):
        state, actions = step(script, state, event)
        said += [a for a in actions if isinstance(a, Say)]
    kinds = [s.kind for s in said]
    # speech resets the count; two prompts in a row, then the goodbye; no-match reprompts once
    assert kinds == ["silence", "", "silence", "silence", "silence_goodbye"]
    assert said[1].text == script.reprompt and state.ending
    assert state.outcome == "no_response"


def test_without_a_silence_section_silence_reprompts_as_before() -> None:
    from callflow.machine import Answered

    script = make_script()
    state, _ = step(script, DialogState(), Answered())
    state, actions = step(script, state, NoInput())
    assert [a.text for a in actions if isinstance(a, Say)] == [script.reprompt]


# ---- the parts ---------------------------------------------------------------------------


def test_backchannels_are_made_only_of_listening_words() -> None:
    policy = BargeInPolicy()
    for text in ("嗯", "嗯嗯", "对对对", "好的。", "嗯，好的", "是的", ""):
        assert policy.is_backchannel(text), text
    for text in ("不用了", "你是谁", "好的我知道了但是不需要", "多少钱", "不"):
        assert not policy.is_backchannel(text), text
    custom = BargeInPolicy(backchannels=parse_backchannels("嗯, 行吧"))
    assert custom.is_backchannel("行吧") and not custom.is_backchannel("好的")
    assert parse_backchannels(" , ") == BargeInPolicy().backchannels


def test_a_line_may_have_parts_that_cannot_be_cut() -> None:
    parts = [{"text": DISCLOSURE, "interruptible": False}, PITCH]
    script = make_script(greeting=parts)
    greeting = script.states["greeting"]
    assert greeting.say == DISCLOSURE + PITCH
    assert greeting.segments == ((DISCLOSURE, False), (PITCH, True))
    assert DISCLOSURE in script.lines() and PITCH in script.lines()
    for bad, where in (([], "greeting.say"), ([{"text": ""}], "part 0.text"), ([3], "part 0")):
        with pytest.raises(ScriptError, match=where):
            make_script(greeting=bad)
    with pytest.raises(ScriptError, match="silence.max"):
        make_script(silence={"max": -1})
    with pytest.raises(ScriptError, match="unknown keys"):
        make_script(silence={"promt": "在吗"})


def test_the_worker_playout_holds_resumes_and_stamps_the_first_frame() -> None:
    now = [10.0]
    p = Playout(clock=lambda: now[0])
    p.live = True
    p.push(bytes(640))
    p.cue("say1")
    p.push(b"\x01" * 640)
    assert p.pull()[0] == bytes(320) and p.started == []
    assert p.pause() == 960 and p.pull() == (None, ())  # held: silence goes out
    p.resume()
    now[0] = 11.0
    p.pull()
    assert p.started == [] and p.last_audio_t == 11.0
    now[0] = 12.0
    assert p.pull()[0] == b"\x01" * 320 and p.started == [("say1", 12.0)]
    p.cue("say2")
    p.push(bytes(320))
    p.pause()
    assert p.clear() == 640 and p.pull() == (None, ())  # a clear drops the cue and the pause
    p.push(bytes(320))
    p.pull()
    assert p.started == [("say1", 12.0)]


async def test_slow_words_resume_the_robot_and_cut_it_late_if_they_are_a_bid(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path, make_script(), utterance("多少钱", 0.0, 0.4, endpoint_s=0.2, decode_s=1.0))
    call = await rig.start()
    call.advance(300)
    rig.speak(0.7)  # the speech ended (0.6 s) but its words come only at 1.6 s
    await wait_for(lambda: call.paused)
    await wait_for(lambda: not call.paused, within_s=2)  # no words in time: likely 嗯, go on
    assert call.queued_ms > 0 and len(call.played) == 4800
    call.advance(200)
    rig.speak(1.0)  # the words arrive: a question after all
    await wait_for(lambda: call.queued_ms == rig.ms(PRICE))
    res = await rig.end()
    greeting = robot(res)[0]
    assert greeting.detail["barge_in"] == ["late_words"] and greeting.detail["heard_ms"] == 500
    assert [t.intent for t in callee(res)] == ["ask_price"]


async def test_an_unclear_short_sound_is_not_a_barge_in(tmp_path: Path) -> None:
    rig = Rig(tmp_path, make_script(), utterance("4", 0.0, 0.3, endpoint_s=0.2, confidence=0.1))
    call = await rig.start()
    call.advance(300)
    rig.speak(0.1)
    await wait_for(lambda: call.paused)
    rig.speak(0.5)
    await wait_for(lambda: not call.paused)
    res = await rig.end()
    assert robot(res)[0].detail["backchannels"] == ["4"] and callee(res) == []
