"""Call screening, pure: the phrase table (by characters and by sound), the verdict from
scripted cues (virtual time: no audio, no clock), and a session over fakes that hangs up on a
machine before a word of the script and greets a person."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from callflow.gate import Screening, screened_end, voicemail_kind
from callflow.screening import Kind, ScreenConfig, Screener, match_text
from callflow.session import CallSession
from core.audio import FRAME_BYTES
from core.vocab import Disposition
from speech.asr.fake import FakeStreamAsr, utterance
from speech.cues import Cues
from telephony.base import CallState, Progress
from telephony.fake import FakeCall
from tests.screenrig import screened_session


def test_a_garbled_announcement_is_generic() -> None:
    # 已关机 garbled past the sound match (heard so in CI): only the carrier's opening and
    # 请稍后再拨 are left, and a generic announcement is screened as unreachable
    match = match_text("您拨打必便做已完结，请稍后开播")
    assert match is not None and match.kind is Kind.UNREACHABLE and match.generic


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("对不起，您拨打的号码是空号，请查证后再拨", Kind.INVALID_NUMBER),
        ("您拨打的号码是公号", Kind.INVALID_NUMBER),  # 空号 misheard: one syllable off
        ("您拨打的电话已关机", Kind.POWERED_OFF),
        ("您莫大必便说已关几", Kind.POWERED_OFF),  # homophones of 已关机
        ("您拨打的电话已停机", Kind.SUSPENDED),
        ("该号码已暂停使用", Kind.SUSPENDED),
        ("您拨打的用户暂时无法接听", Kind.UNREACHABLE),
        ("您拨打的用户不在服务区", Kind.UNREACHABLE),
        ("对不起，您拨打的电话正在通话中，请稍后再拨", Kind.BUSY_IN_CALL),
        ("您好，我是机主的智能助理，请问您有什么事", Kind.CALL_SCREENING),
        ("您拨打的用户已设置呼叫转移", Kind.CALL_SCREENING),
        ("您好，我现在不方便接听电话，请在提示音后留言", Kind.VOICEMAIL),
        ("欢迎致电云启科技，人工服务请按0", Kind.IVR),
        ("The number you dialed is powered off", Kind.POWERED_OFF),
        ("Please leave a message after the tone", Kind.VOICEMAIL),
    ],
)
def test_announcements_by_kind(text: str, kind: Kind) -> None:
    match = match_text(text)
    assert match is not None and match.kind is kind and not match.generic


@pytest.mark.parametrize(
    "text",
    [
        "喂，你好",
        "你好哪位",
        "我在开会",
        "多少钱",
        "我现在不方便接电话",
        "我正忙呢",
        "记住了",
        "给我留个言",
    ],
)
def test_what_people_say_is_no_machine(text: str) -> None:
    assert match_text(text) is None


def test_the_carriers_opening_alone_is_generic() -> None:
    match = match_text("您拨打的电话")
    assert match is not None and match.generic and match.kind is Kind.UNREACHABLE


def test_every_machine_kind_has_its_disposition() -> None:
    for kind in Kind:
        assert (kind.disposition is None) == (kind in (Kind.HUMAN, Kind.UNCERTAIN))
        if kind.disposition is not None:
            assert kind.disposition == Disposition(kind.value)


def cues(t: float, **kw: object) -> Cues:
    return Cues(t=t, **kw)  # type: ignore[arg-type]


CFG = ScreenConfig(greet_cap_s=1.5, hold_max_s=4.0, human_pause_s=0.4, monologue_s=3.0)


@pytest.mark.parametrize(
    ("name", "snapshot", "kind", "reason"),
    [
        ("silence under the cap", cues(1.0, silence_s=1.0), None, ""),
        ("silence at the cap", cues(1.5, silence_s=1.5), Kind.UNCERTAIN, "cap"),
        (
            "喂，你好 then a pause",
            cues(1.2, runs=1, run_s=0.6, longest_run_s=0.6, first_speech_t=0.2, silence_s=0.4),
            Kind.HUMAN,
            "short_greeting",
        ),
        (
            "喂 still pausing",
            cues(0.9, runs=1, run_s=0.6, longest_run_s=0.6, first_speech_t=0.2, silence_s=0.1),
            None,
            "",
        ),
        (
            "talking at the cap",
            cues(1.5, runs=1, speaking=True, run_s=1.2, longest_run_s=1.2, first_speech_t=0.3),
            None,
            "",
        ),
        (
            "a long first utterance ends after the cap",
            cues(2.3, runs=1, run_s=1.9, longest_run_s=1.9, first_speech_t=0.1, silence_s=0.3),
            Kind.HUMAN,
            "cap",
        ),
        (
            "a monologue from the answer, at the hold limit",
            cues(4.0, runs=1, speaking=True, run_s=3.7, longest_run_s=3.7, first_speech_t=0.3),
            Kind.VOICEMAIL,
            "monologue",
        ),
        (
            "talking late, at the hold limit",
            cues(4.0, runs=2, speaking=True, run_s=1.0, longest_run_s=1.0, first_speech_t=0.3),
            Kind.UNCERTAIN,
            "hold",
        ),
        ("a beep", cues(1.0, beep_t=0.9, beep_hz=1000.0), Kind.VOICEMAIL, "beep"),
    ],
)
def test_verdicts_after_the_answer(
    name: str, snapshot: Cues, kind: Kind | None, reason: str
) -> None:
    verdict = Screener(CFG, answered=True).decide(snapshot)
    if kind is None:
        assert verdict is None, name
    else:
        assert verdict is not None and (verdict.kind, verdict.reason) == (kind, reason), name


def test_text_decides_before_the_cues() -> None:
    s = Screener(CFG, answered=True)
    s.hear("您拨打的电话已关", final=False)  # a partial: nothing yet
    assert s.decide(cues(0.5, speaking=True, runs=1, run_s=0.3)) is None
    s.hear("您拨打的电话已关机", final=False)
    verdict = s.decide(cues(0.8, speaking=True, runs=1, run_s=0.6))
    assert verdict is not None and verdict.kind is Kind.POWERED_OFF and verdict.phrase == "已关机"


def test_early_media_decides_on_text_only() -> None:
    s = Screener(CFG, answered=False)
    music = cues(9.0, runs=1, speaking=True, run_s=9.0, beep_t=2.0)  # 彩铃 and a ringback tone
    assert s.decide(music) is None
    s.hear("您拨打的用户", final=False)  # the opening, in a partial: wait for more
    assert s.decide(music) is None
    assert s.settle(music).kind is Kind.UNREACHABLE  # ...unless the call ends there
    s.hear("您拨打的用户暂时无法接通", final=True)
    verdict = s.decide(music)
    assert verdict is not None and verdict.kind is Kind.UNREACHABLE and verdict.reason == "text"


def test_the_config_is_checked() -> None:
    with pytest.raises(ValueError, match="greet_cap_s"):
        ScreenConfig(greet_cap_s=5.0, hold_max_s=4.0)


def test_the_disposition_follows_the_machine() -> None:
    end = Progress(CallState.ENDED, 200, "OK", Disposition.COMPLETED, "local")
    machine = Screener(CFG, answered=True).decide(cues(1.0, beep_t=0.5))
    person = Screener(CFG, answered=True).decide(cues(2.0, silence_s=2.0))
    assert screened_end(end, machine).end_reason is Disposition.VOICEMAIL  # type: ignore[union-attr]
    assert screened_end(end, person) is end
    assert voicemail_kind(["您拨打的电话已关机"]) is Kind.POWERED_OFF
    assert voicemail_kind(["请留言"]) is Kind.VOICEMAIL
    assert voicemail_kind(["嗯"]) is Kind.VOICEMAIL


# ---- a session over fakes: the gate in front of the conversation -------------------------


class ScriptedCues:
    """A cue analyzer whose snapshot is scripted by stream time (frames pushed)."""

    def __init__(self, at: dict[float, Cues]) -> None:
        self._at = sorted(at.items())
        self._frames = 0

    def push(self, frame: bytes) -> None:
        self._frames += 1

    def cues(self) -> Cues:
        t = self._frames * 0.02
        snap = cues(t, silence_s=t)
        for when, c in self._at:
            if t >= when:
                snap = replace(c, t=t)
        return snap


async def run_session(
    tmp_path: Path, analyzer: ScriptedCues, asr: FakeStreamAsr
) -> tuple[CallSession, FakeCall]:
    session, call = await screened_session(
        tmp_path,
        asr,
        Screening(make_cues=lambda: analyzer, config=CFG),
        voicemail=None,  # a voicemail is hung up on (no message)
        auto_play=True,
        no_input_timeout_s=0.3,
        max_call_s=10,
    )
    task = asyncio.create_task(session.run())
    for _ in range(150):  # 3 s of callee audio, 20 ms frames, pushed faster than real time
        if task.done() or call.ended is not None:
            break
        call.push_audio(bytes(FRAME_BYTES))
        await asyncio.sleep(0.002)
    await asyncio.wait_for(task, 10)
    return session, call


async def test_a_beep_after_the_answer_ends_the_call_unheard(tmp_path: Path) -> None:
    analyzer = ScriptedCues({0.6: cues(0, beep_t=0.5, beep_hz=1000.0)})
    session, call = await run_session(tmp_path, analyzer, FakeStreamAsr())
    assert session.screening is not None and session.screening.kind is Kind.VOICEMAIL
    assert [t.speaker for t in session.turns] == ["callee"]  # no robot line at all
    assert session.turns[0].intent == "screen:voicemail"
    assert call.played == b""  # the machine heard nothing
    assert call.ended is not None and call.ended.hangup_by == "local"


async def test_a_spoken_announcement_names_its_kind(tmp_path: Path) -> None:
    asr = FakeStreamAsr([utterance("您拨打的电话已关机", 0.1, 0.9, partials=[(0.5, "您拨打")])])
    analyzer = ScriptedCues({0.1: cues(0, runs=1, speaking=True, run_s=0.8)})
    session, call = await run_session(tmp_path, analyzer, asr)
    assert session.screening is not None and session.screening.kind is Kind.POWERED_OFF
    assert call.played == b""


async def test_a_person_is_greeted(tmp_path: Path) -> None:
    hello = cues(0, runs=1, run_s=0.5, longest_run_s=0.5, first_speech_t=0.1, silence_s=0.5)
    analyzer = ScriptedCues({0.7: hello})
    session, call = await run_session(tmp_path, analyzer, FakeStreamAsr())
    assert session.screening is not None and session.screening.kind is Kind.HUMAN
    assert session.screening.at_s < CFG.greet_cap_s  # before the cap: the pause told
    assert session.turns and session.turns[0].speaker == "robot"  # the greeting
    assert call.played  # ...which the callee heard
