"""Machines after the answer, over fakes (virtual cues, scripted recognizer, no audio): the
script's voicemail message left after the beep, a machine that answered like a person caught
while the greeting plays, the announcement kind guessed after the carrier's opening, and the
``voicemail:`` script section checked."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from callflow.gate import Screening, Watch
from callflow.screening import Kind, ScreenConfig, Screener, match_text
from callflow.script import ScriptError
from callflow.script_parse import parse_script
from callflow.session import CallSession, SessionResult
from callflow.voicemail import Voicemail
from core.audio import FRAME_BYTES
from core.vocab import Disposition, Outcome
from nlu.base import INTENTS
from speech.asr.fake import FakeStreamAsr, utterance
from speech.cues import Cues
from speech.tts.fake import FakeTts
from telephony.fake import FakeCall
from tests.screenrig import screened_session

CFG = ScreenConfig(greet_cap_s=1.5, hold_max_s=4.0, human_pause_s=0.4, monologue_s=3.0)
MESSAGE = "您好，这里是云启科技，稍后再联系您"
SILENT = Cues(t=0.0)


class ScriptedCues:
    """A cue analyzer whose snapshot is scripted by stream time (frames pushed)."""

    def __init__(self, at: dict[float, Cues] | None = None) -> None:
        self._at = sorted((at or {}).items())
        self._frames = 0

    def push(self, frame: bytes) -> None:
        self._frames += 1

    def cues(self) -> Cues:
        t = self._frames * 0.02
        snap = Cues(t=t, silence_s=t)
        for when, c in self._at:
            if t >= when:
                snap = replace(c, t=t)
        return snap


def phases(*analyzers: ScriptedCues) -> Screening:
    """A screening whose cue analyzers are handed out in order: early media, the answer, the
    watch over the conversation."""
    queue = list(analyzers)
    return Screening(make_cues=lambda: queue.pop(0) if queue else ScriptedCues(), config=CFG)


HELLO = Cues(t=0, runs=1, run_s=0.5, longest_run_s=0.5, first_speech_t=0.1, silence_s=0.5)
MONOLOGUE = Cues(t=0, runs=1, speaking=True, run_s=3.8, longest_run_s=3.8, first_speech_t=0.2)


def beep_at(t: float, after: Cues = SILENT) -> Cues:
    return replace(after, beep_t=t, beep_hz=1000.0, speaking=False, silence_s=0.3)


async def call_with(
    tmp_path: Path,
    screening: Screening,
    asr: FakeStreamAsr,
    *,
    voicemail: Voicemail | None = None,
    seconds: float = 6.0,
) -> tuple[CallSession, FakeCall, SessionResult, int | None]:
    """Run a session over a fake call, pushing `seconds` of callee frames faster than real
    time; also returns the frame index at which the robot's first audio went out."""
    session, call = await screened_session(
        tmp_path,
        asr,
        screening,
        voicemail=voicemail,
        auto_play=False,  # the robot's audio plays as the frames go by
        no_input_timeout_s=5.0,
        max_call_s=20,
    )
    task = asyncio.create_task(session.run())
    first_audio: int | None = None
    for i in range(int(seconds / 0.02)):
        if task.done() or call.ended is not None:
            break
        call.push_audio(bytes(FRAME_BYTES))
        call.advance(20)
        await asyncio.sleep(0.002)
        if first_audio is None and call.played:
            first_audio = i
    call.remote_hangup()  # a person still talking to the robot hangs up here
    result = await asyncio.wait_for(task, 10)
    return session, call, result, first_audio


def robot_turns(session: CallSession) -> list[str]:
    return [t.text for t in session.turns if t.speaker == "robot"]


# ---- leaving a message ---------------------------------------------------------------------


async def test_a_voicemail_hears_the_message_after_its_beep(tmp_path: Path) -> None:
    answered = ScriptedCues(
        {0.02: MONOLOGUE, 4.0: replace(MONOLOGUE, speaking=True), 5.0: beep_at(5.0, MONOLOGUE)}
    )
    screening = phases(ScriptedCues(), answered)
    session, call, result, first = await call_with(
        tmp_path, screening, FakeStreamAsr(), voicemail=Voicemail(MESSAGE, 5.0), seconds=10.0
    )
    assert session.screening is not None and session.screening.reason == "monologue"
    assert robot_turns(session) == [MESSAGE]  # the message, never the greeting or the pitch
    (turn,) = [t for t in session.turns if t.speaker == "robot"]
    assert turn.detail["kind"] == "voicemail_message"
    assert first is not None and first * 0.02 >= 5.0  # after the beep, not at the verdict (4 s)
    assert bytes(call.played) == await FakeTts().synthesize(MESSAGE)  # all of it was played
    assert result.outcome is Outcome.VOICEMAIL
    assert call.ended is not None and call.ended.hangup_by == "local"
    assert result.end is not None and result.end.end_reason is Disposition.VOICEMAIL


async def test_a_voicemail_beep_before_the_verdict_gets_the_message_at_once(
    tmp_path: Path,
) -> None:
    screening = phases(ScriptedCues(), ScriptedCues({0.6: beep_at(0.5)}))
    session, call, result, first = await call_with(
        tmp_path, screening, FakeStreamAsr(), voicemail=Voicemail(MESSAGE, 5.0)
    )
    assert robot_turns(session) == [MESSAGE]
    assert first is not None and first * 0.02 < 1.0
    assert result.outcome is Outcome.VOICEMAIL


async def test_without_a_message_a_voicemail_is_hung_up_on_silently(tmp_path: Path) -> None:
    screening = phases(ScriptedCues(), ScriptedCues({0.6: beep_at(0.5)}))
    session, call, result, _ = await call_with(tmp_path, screening, FakeStreamAsr())
    assert robot_turns(session) == [] and call.played == b""
    assert result.outcome is Outcome.VOICEMAIL


# ---- a machine that answered like a person -----------------------------------------------


async def test_a_beep_while_the_greeting_plays_stops_it_and_ends_the_call(
    tmp_path: Path,
) -> None:
    """您好 + a pause: a person, by its cues; then the record beep under the greeting."""
    screening = phases(
        ScriptedCues(), ScriptedCues({0.7: HELLO}), ScriptedCues({1.0: beep_at(0.9)})
    )
    session, call, result, _ = await call_with(tmp_path, screening, FakeStreamAsr())
    verdict = session.screening
    assert verdict is not None and (verdict.kind, verdict.reason) == (Kind.VOICEMAIL, "late_beep")
    greeting, machine = session.turns[0], session.turns[1]
    assert greeting.speaker == "robot" and greeting.interrupted  # stopped mid-line
    assert machine.intent == "screen:voicemail"
    assert len(robot_turns(session)) == 1  # nothing after: no pitch, no goodbye
    assert result.outcome is Outcome.VOICEMAIL
    assert result.end is not None and result.end.end_reason is Disposition.VOICEMAIL
    assert call.ended is not None and call.ended.hangup_by == "local"


async def test_a_machine_phrase_heard_during_the_greeting_ends_the_call(tmp_path: Path) -> None:
    asr = FakeStreamAsr([(), utterance("请在提示音后留言", 0.3, 1.2)])  # the conversation's stream
    screening = phases(ScriptedCues(), ScriptedCues({0.7: HELLO}), ScriptedCues())
    session, _, result, _ = await call_with(
        tmp_path, screening, asr, voicemail=Voicemail(MESSAGE, 1.0)
    )
    verdict = session.screening
    assert verdict is not None and (verdict.kind, verdict.reason) == (Kind.VOICEMAIL, "late_text")
    assert robot_turns(session)[-1] == MESSAGE  # the greeting cut, then the message
    assert [t.intent for t in session.turns if t.speaker == "callee"] == ["screen:voicemail"]
    assert result.outcome is Outcome.VOICEMAIL


async def test_a_person_is_not_watched_out_of_the_call(tmp_path: Path) -> None:
    asr = FakeStreamAsr([(), utterance("好的你说", 2.5, 3.2)])
    screening = phases(ScriptedCues(), ScriptedCues({0.7: HELLO}), ScriptedCues())
    session, _, result, _ = await call_with(tmp_path, screening, asr, seconds=4.0)
    assert session.screening is not None and session.screening.kind is Kind.HUMAN
    assert not any(str(t.intent).startswith("screen:") for t in session.turns)
    assert result.outcome is not Outcome.VOICEMAIL


def test_the_watch_ends_with_its_window() -> None:
    w = Watch(ScriptedCues({3.0: beep_at(2.9)}), window_s=2.0)
    verdicts = [w.push(bytes(FRAME_BYTES)) for _ in range(200)]
    assert not any(verdicts)  # the beep came after the window: a person's own phone
    assert w.greeting_over.is_set()  # ... still tracked, for a message left after it
    w2 = Watch(ScriptedCues(), window_s=2.0)
    w2.hear("您拨打的电话", final=True)  # a carrier's opening alone is not enough
    assert not any(w2.push(bytes(FRAME_BYTES)) for _ in range(50))


# ---- the announcement's kind from a garbled transcript ------------------------------------


def test_the_kind_is_guessed_after_the_carriers_opening() -> None:
    heard = (
        "您莫大必便说以关提，请稍后开播"  # Whisper base on espeak: 您拨打的电话已关机，请稍后再拨
    )
    match = match_text(heard)
    assert match is not None and match.kind is Kind.POWERED_OFF and match.guessed
    assert match_text("以关提") is None  # without the opening: no announcement at all
    s = Screener(CFG, answered=False)
    s.hear(heard, final=False)
    assert s.decide(Cues(t=2.0)) is None  # a partial guess waits for the final
    s.hear(heard, final=True)
    verdict = s.decide(Cues(t=3.0))
    assert verdict is not None and verdict.kind is Kind.POWERED_OFF


@pytest.mark.parametrize(
    ("heard", "kind"),
    [  # what Whisper base wrote for espeak announcements over μ-law (bench/screening.py, e2e)
        ("您莫大必便说以弯起，请稍后开拨", Kind.POWERED_OFF),  # 已关机: g dropped, j -> q
        ("您拨打敌人复生开通，瓦宗", Kind.BUSY_IN_CALL),  # 正在通话中
        ("宁波达比云复善是无法结通，请稍后再播", Kind.UNREACHABLE),
        ("对不起，您拨打必号码是公号，请查身受开播", Kind.INVALID_NUMBER),
    ],
)
def test_garbled_announcements_keep_their_kind(heard: str, kind: Kind) -> None:
    match = match_text(heard)
    assert match is not None and match.kind is kind and not match.generic


def test_a_garble_too_far_from_any_kind_stays_generic() -> None:
    match = match_text("您拖大便损而完结，请稍后开播")  # 已关机 beyond recognition
    assert match is not None and match.generic


def test_the_carriers_opening_alone_waits_for_the_kind() -> None:
    s = Screener(CFG, answered=False)
    s.hear("您拨打的电话", final=True)
    assert s.decide(Cues(t=1.0)) is None
    assert s.decide(Cues(t=1.0 + CFG.generic_wait_s - 0.1)) is None
    s.hear("您拨打的电话正在通话中", final=True)  # the next repetition names it
    verdict = s.decide(Cues(t=9.0))
    assert verdict is not None and verdict.kind is Kind.BUSY_IN_CALL
    waited = Screener(CFG, answered=False)
    waited.hear("您拨打的电话", final=True)
    waited.decide(Cues(t=1.0))
    verdict = waited.decide(Cues(t=1.0 + CFG.generic_wait_s))
    assert verdict is not None and verdict.kind is Kind.UNREACHABLE  # the generic guess
    again = Screener(CFG, answered=False)
    again.hear("您拨打的电话，请稍后再拨", final=True)
    assert again.decide(Cues(t=4.0)) is None
    again.hear("您拨打的电话，请稍后再拨", final=True)  # repeated, still no kind: decide
    verdict = again.decide(Cues(t=8.0))
    assert verdict is not None and verdict.kind is Kind.UNREACHABLE
    answered = Screener(CFG, answered=True)  # after the answer nobody waits for the kind
    answered.hear("您拨打的电话", final=True)
    verdict = answered.decide(Cues(t=1.0))
    assert verdict is not None and verdict.kind is Kind.UNREACHABLE


# ---- the script section ---------------------------------------------------------------------

BASE = {
    "name": "t",
    "start": "a",
    "give_up": "z",
    "vars": {"company": "云启科技"},
    "states": {"a": {"say": "你好", "on": {"affirm": "z"}}, "z": {"say": "再见", "end": "dnc"}},
}


def test_the_voicemail_section_is_parsed_with_its_variables() -> None:
    data = {**BASE, "voicemail": {"leave_message": "这里是{company}，再见", "beep_wait_s": 5}}
    script = parse_script(data, source="t.yaml", known_intents=INTENTS)
    assert script.voicemail == Voicemail("这里是云启科技，再见", 5.0)
    assert "这里是云启科技，再见" in script.lines()  # rendered with the campaign's lines
    assert parse_script(BASE, source="t.yaml", known_intents=INTENTS).voicemail is None


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("留言", "voicemail must be a mapping"),
        ({"leave_message": ""}, "leave_message must be a non-empty string"),
        ({"leave_message": "x", "beep_wait_s": 0}, "beep_wait_s must be in"),
        ({"leave_message": "x", "beep_wait_s": "8"}, "beep_wait_s must be a number"),
        ({"leave_message": "x", "wait": 3}, "unknown keys ['wait']"),
    ],
)
def test_a_bad_voicemail_section_is_named(section: object, message: str) -> None:
    with pytest.raises(ScriptError, match="t.yaml") as err:
        parse_script({**BASE, "voicemail": section}, source="t.yaml", known_intents=INTENTS)
    assert message in str(err.value)
