"""CallSession + Dialer over the fake telephony, fake ASR and fake TTS: every call path,
stored in a real SQLite database. Real SIP/ASR paths are in tests/test_e2e_*.py.

The rig's recognizer is the real StreamAdapter (VAD segmentation, partials, finals) over the
scripted FakeAsr; timing tests use FakeStreamAsr, whose events follow the stream clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bus.fake import RecordingBus
from callflow.script import Script
from callflow.script_parse import load_script
from callflow.session import CallSession, TurnRecord
from campaigns.compliance import CallingWindow
from campaigns.dialer import AttemptSummary, Dialer, TrunkConfig
from campaigns.store import ClaimedLead
from models import CallAttempt, Campaign, DncEntry, Lead, LeadStatus, OutboxItem, Turn, init_db
from nlu.base import INTENTS, IntentClassifier, IntentResult
from nlu.fake import FakeClassifier
from speech.asr.adapter import StreamAdapter
from speech.asr.fake import FakeAsr, FakeStreamAsr, utterance
from speech.cache import PromptCache
from speech.tts.fake import FakeTts
from speech.vad import Endpointer
from telephony.base import CallHandle
from telephony.fake import FakeCall, FakeTelephony, busy

RATE = 8000
SPEECH = (0.3 * 32767 * np.sin(2 * np.pi * 300 * np.arange(RATE) / RATE)).astype("<i2").tobytes()
SILENCE = bytes(2 * RATE)


def loud(frame: bytes) -> bool:
    return float(np.abs(np.frombuffer(frame, "<i2")).mean()) > 500


@pytest.fixture
def script() -> Script:
    return load_script("callflow/scripts/saas_demo.yaml", known_intents=INTENTS)


class Rig:
    def __init__(self, tmp_path: Path, script: Script, *, auto_play: bool = True) -> None:
        self.db = init_db(f"sqlite:///{tmp_path}/s.db")
        self.tel = FakeTelephony(auto_play=auto_play)
        self.asr = FakeAsr()
        self.stream_asr: StreamAdapter | FakeStreamAsr = StreamAdapter(
            self.asr, lambda: Endpointer(classifier=loud, end_silence_ms=300)
        )
        self.bus = RecordingBus()
        self.prompts = PromptCache(FakeTts(), tmp_path / "cache")
        self.script = script
        self.no_input_s = 5.0
        self.continuation_s = 1.0
        self.nlu: IntentClassifier = FakeClassifier()
        self.dialer = Dialer(
            db=self.db,
            telephony=self.tel,
            make_session=self.make_session,
            bus=self.bus,
            trunk=TrunkConfig("sip:{phone}@sim"),
            window=CallingWindow.parse("00:00-24:00"),
            max_concurrent=2,
            max_attempts=3,
        )
        with self.db.begin() as s:
            camp = Campaign(name="c", script="demo.yaml")
            s.add(camp)
            s.flush()
            self.campaign_id = camp.id

    def make_session(self, call: CallHandle, lead: ClaimedLead) -> CallSession:
        return CallSession(
            call=call,
            script=self.script,
            asr=self.stream_asr,
            nlu=self.nlu,
            prompts=self.prompts,
            no_input_timeout_s=self.no_input_s,
            max_call_s=20,
            **self.session_options(lead),
        )

    def session_options(self, lead: ClaimedLead) -> dict[str, Any]:
        """What this rig's sessions get beyond the fakes (a rig for other features overrides
        it)."""
        return {
            "asr_prompt": "喂，你好。多少钱？",
            "asr_language": "zh",
            "continuation_s": self.continuation_s,
        }

    def add_lead(self, phone: str) -> int:
        with self.db.begin() as s:
            lead = Lead(campaign_id=self.campaign_id, phone=phone)
            s.add(lead)
            s.flush()
            return lead.id


async def wait_for(cond: Callable[[], bool], within_s: float = 5.0) -> None:
    """Poll a test condition (the fakes have no events for "robot audio queued")."""
    async with asyncio.timeout(within_s):
        while not cond():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


def robot_spoke(call: FakeCall, heard_before: int) -> bool:
    return len(call.played) > heard_before or call.ended is not None


async def callee(tel: FakeTelephony, asr: FakeAsr, lines: list[str]) -> FakeCall:
    """Answer like a person: after each robot line has played, say the next line."""
    await wait_for(lambda: bool(tel.calls))
    call = tel.calls[-1]
    heard = 0
    for line in lines:
        await wait_for(partial(robot_spoke, call, heard))
        await asyncio.sleep(0.02)
        heard = len(call.played)
        asr.push_script(line)
        call.push_audio(SPEECH + SILENCE)
    return call


@pytest.mark.parametrize(
    ("lines", "outcome", "status"),
    [
        (
            ["喂你好", "可以啊", "多少钱", "可以，明天来我公司聊演示"],
            "qualified",
            LeadStatus.QUALIFIED,
        ),
        (["我现在在开会"], "callback", LeadStatus.CALLBACK),
        (["别再打了"], "dnc", LeadStatus.DNC),
        (["不需要"], "not_interested", LeadStatus.NOT_INTERESTED),
    ],
)
async def test_conversation_outcomes_are_stored(
    tmp_path: Path, script: Script, lines: list[str], outcome: str, status: str
) -> None:
    rig = Rig(tmp_path, script)
    lead_id = rig.add_lead("13800000001")
    driver = asyncio.create_task(callee(rig.tel, rig.asr, lines))
    (res,) = await rig.dialer.run_until_idle(rig.campaign_id)
    await driver
    assert res.outcome == outcome and res.disposition == "completed"
    with rig.db() as s:
        lead = s.get(Lead, lead_id)
        assert lead is not None and lead.status == status
        att = s.query(CallAttempt).one()
        assert att.outcome == outcome and att.hangup_by == "local"
        turns = s.query(Turn).filter_by(attempt_id=att.id).order_by(Turn.seq).all()
        callee_turns = [t for t in turns if t.speaker == "callee"]
        assert [t.text for t in callee_turns] == lines
        assert all(t.latency_ms is not None and t.latency_ms >= 0 for t in callee_turns)
        assert turns[0].speaker == "robot" and "机器人" in turns[0].text
        assert (s.query(OutboxItem).count() == 1) == (outcome == "qualified")
        assert (s.get(DncEntry, "13800000001") is not None) == (outcome == "dnc")
    assert "call/ended" in rig.bus.topics()


async def test_busy_line_is_stored_with_sip_code(tmp_path: Path, script: Script) -> None:
    rig = Rig(tmp_path, script)
    rig.tel.script(busy())
    lead_id = rig.add_lead("13800000486")
    (res,) = await rig.dialer.run_until_idle(rig.campaign_id)
    assert (res.disposition, res.sip_code, res.outcome) == ("busy", 486, None)
    with rig.db() as s:
        lead = s.get(Lead, lead_id)
        assert lead is not None and lead.status == LeadStatus.RETRY
        assert lead.next_attempt_at is not None


async def test_callee_hangs_up_mid_sentence(tmp_path: Path, script: Script) -> None:
    rig = Rig(tmp_path, script, auto_play=False)
    rig.add_lead("13800000099")

    async def hang_up_while_robot_talks() -> None:
        await wait_for(lambda: bool(rig.tel.calls) and rig.tel.calls[0].queued_ms > 1000)
        call = rig.tel.calls[0]
        call.advance(700)  # the callee hears 0.7 s of the greeting, then hangs up
        call.remote_hangup()

    driver = asyncio.create_task(hang_up_while_robot_talks())
    (res,) = await rig.dialer.run_until_idle(rig.campaign_id)
    await driver
    assert (res.disposition, res.outcome) == ("completed", "hung_up")
    with rig.db() as s:
        att = s.query(CallAttempt).one()
        assert att.hangup_by == "remote" and att.final_state == "greeting"
        lead = s.query(Lead).one()
        assert lead.status == LeadStatus.RETRY


async def test_barge_in_clears_robot_audio(tmp_path: Path, script: Script) -> None:
    rig = Rig(tmp_path, script, auto_play=False)
    rig.add_lead("13800000001")

    async def interrupt() -> None:
        await wait_for(lambda: bool(rig.tel.calls) and rig.tel.calls[0].queued_ms > 1000)
        call = rig.tel.calls[0]
        call.advance(500)
        rig.asr.push_script("你是谁")
        call.push_audio(SPEECH + SILENCE)
        await wait_for(lambda: len(rig.asr.calls) == 1)
        await wait_for(lambda: call.queued_ms > 0)  # the identity answer is queued
        call.remote_hangup()

    driver = asyncio.create_task(interrupt())
    (res,) = await rig.dialer.run_until_idle(rig.campaign_id)
    await driver
    greeting, heard, answer = res.turns[0], res.turns[1], res.turns[2]
    assert greeting.interrupted is True
    assert greeting.detail["heard_ms"] == 500
    assert heard.intent == "ask_identity"
    assert answer.speaker == "robot" and "机器人" in answer.text


async def test_silence_asks_if_the_callee_is_there_then_gives_up(
    tmp_path: Path, script: Script
) -> None:
    rig = Rig(tmp_path, script)
    rig.no_input_s = 0.05
    rig.add_lead("13800000001")
    (res,) = await rig.dialer.run_until_idle(rig.campaign_id)
    robot = [t.text for t in res.turns if t.speaker == "robot"]
    assert script.silence is not None and script.reprompt not in robot
    assert robot[1:] == [script.silence.prompt] * script.silence.max + [script.silence.goodbye]
    assert res.outcome == "no_response"


async def test_dnc_number_is_never_dialed(tmp_path: Path, script: Script) -> None:
    rig = Rig(tmp_path, script)
    rig.add_lead("13800000003")
    with rig.db.begin() as s:
        s.add(DncEntry(phone="13800000003"))
    assert await rig.dialer.run_until_idle(rig.campaign_id) == []
    assert rig.tel.calls == []


async def test_dial_error_is_stored_as_failed(
    tmp_path: Path, script: Script, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a full pool is no attempt at all (the claim is released): tests/test_campaigns_dialer.py
    rig = Rig(tmp_path, script)

    async def unreachable(request: object) -> FakeCall:
        raise OSError("trunk unreachable")

    monkeypatch.setattr(rig.tel, "dial", unreachable)
    rig.add_lead("13800000001")
    (res,) = await rig.dialer.run_until_idle(rig.campaign_id)
    assert res.disposition == "failed"
    with rig.db() as s:
        assert "unreachable" in (s.query(CallAttempt).one().sip_reason or "")


async def test_partials_and_honest_turn_latency(tmp_path: Path, script: Script) -> None:
    """Callee speaks 0.3-1.3 s of its audio; the endpoint comes 0.6 s later and the final 0.1 s
    after that (stream clock). Latency counts from the end of speech, not from the endpoint."""
    rig = Rig(tmp_path, script)
    line = utterance(
        "我现在在开会", 0.3, 1.3, partials=[(0.8, "我现在")], endpoint_s=0.6, decode_s=0.1
    )
    rig.stream_asr = FakeStreamAsr([line])
    rig.add_lead("13800000001")

    async def speak() -> None:
        await wait_for(lambda: bool(rig.tel.calls) and len(rig.tel.calls[0].played) > 0)
        call = rig.tel.calls[0]
        await asyncio.sleep(0.02)
        for _ in range(100):  # 2 s of callee audio in real time, 20 ms frames
            call.push_audio(bytes(320))
            await asyncio.sleep(0.02)

    driver = asyncio.create_task(speak())
    (res,) = await rig.dialer.run_until_idle(rig.campaign_id)
    await driver
    (stream,) = rig.stream_asr.streams
    assert stream.prompt == "喂，你好。多少钱？" and stream.language == "zh"
    said = next(t for t in res.turns if t.speaker == "callee")
    assert said.text == "我现在在开会" and res.outcome == "callback"
    assert said.detail["partials"] == [[0.8, "我现在"]]
    assert said.detail["decode_ms"] == pytest.approx(100)
    # end of speech (1.3 s) -> endpoint (1.9 s) -> final (2.0 s), 20 ms frames in real time
    assert 450 <= said.detail["endpoint_ms"] <= 900
    assert said.latency_ms is not None and said.latency_ms >= said.detail["endpoint_ms"] + 50


async def test_recognizer_failure_does_not_crash_the_call(tmp_path: Path, script: Script) -> None:
    rig = Rig(tmp_path, script)
    rig.stream_asr = FakeStreamAsr(fail_at_s=0.1)
    rig.no_input_s = 0.05
    rig.add_lead("13800000001")

    async def speak() -> None:
        await wait_for(lambda: bool(rig.tel.calls))
        rig.tel.calls[0].push_audio(bytes(320 * 10))

    driver = asyncio.create_task(speak())
    (res,) = await rig.dialer.run_until_idle(rig.campaign_id)
    await driver
    assert res.outcome == "no_response"  # no input heard: re-prompts, then a polite end


async def _split_turn_call(rig: Rig) -> tuple[AttemptSummary, list[TurnRecord]]:
    """The callee says "别再 … 打了" with a 0.5 s pause; the recognizer ends a turn after each
    half (as an early endpoint would). Robot audio only plays when the test advances it."""
    rig.stream_asr = FakeStreamAsr(
        [utterance("别再", 0.3, 0.8, endpoint_s=0.3) + utterance("打了", 1.3, 1.8, endpoint_s=0.3)]
    )
    rig.add_lead("13800000001")

    async def speak() -> None:
        await wait_for(lambda: bool(rig.tel.calls) and rig.tel.calls[0].queued_ms > 0)
        call = rig.tel.calls[0]
        for _ in range(125):  # 2.5 s of callee audio, at 2x real time
            call.push_audio(bytes(320))
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        if rig.continuation_s:
            call.advance(60_000)  # the goodbye plays; the robot hangs up
        else:
            call.remote_hangup()

    driver = asyncio.create_task(speak())
    (res,) = await rig.dialer.run_until_idle(rig.campaign_id)
    await driver
    return res, res.turns


async def test_a_turn_split_by_a_pause_is_understood_as_one(tmp_path: Path, script: Script) -> None:
    rig = Rig(tmp_path, script, auto_play=False)
    res, turns = await _split_turn_call(rig)
    callee = [t for t in turns if t.speaker == "callee"]
    assert [(t.text, t.intent) for t in callee] == [("别再", "other"), ("打了", "complaint_dnc")]
    assert callee[1].detail["continues"] == "别再"
    reprompt = turns[turns.index(callee[0]) + 1]
    assert reprompt.speaker == "robot" and reprompt.interrupted is True  # cut by "打了"
    assert res.outcome == "dnc"  # the machine stepped once, on "别再，打了"


async def test_without_continuations_each_half_is_its_own_turn(
    tmp_path: Path, script: Script
) -> None:
    rig = Rig(tmp_path, script, auto_play=False)
    rig.continuation_s = 0.0
    res, turns = await _split_turn_call(rig)
    callee = [t for t in turns if t.speaker == "callee"]
    assert [t.intent for t in callee] == ["other", "other"]
    assert "continues" not in callee[1].detail
    assert res.outcome != "dnc"


class WeakClassifier:
    """Understands a few lines with set confidences and remembers every context it was given."""

    name = "weak"

    def __init__(self, table: dict[str, tuple[str, float]]) -> None:
        self.table = table
        self.contexts: list[dict[str, Any]] = []

    def classify(self, text: str, context: Mapping[str, Any] | None = None) -> IntentResult:
        self.contexts.append(dict(context or {}))
        intent, confidence = self.table.get(text, ("other", 0.9))
        return IntentResult(intent, confidence)


async def test_a_weak_reply_is_confirmed_before_it_is_acted_on(
    tmp_path: Path, script: Script
) -> None:
    rig = Rig(tmp_path, script)
    nlu = WeakClassifier(
        {"好的": ("affirm", 0.95), "加格": ("ask_price", 0.45), "对": ("affirm", 0.9)}
    )
    rig.nlu = nlu
    rig.add_lead("13800000001")
    driver = asyncio.create_task(callee(rig.tel, rig.asr, ["好的", "加格", "对", "对"]))
    (res,) = await rig.dialer.run_until_idle(rig.campaign_id)
    await driver
    assert res.outcome == "qualified"
    robot = [t.text for t in res.turns if t.speaker == "robot"]
    assert robot[2] == "您是想了解价格吗？" and robot[3] == script.states["price"].say
    callee_turns = [t for t in res.turns if t.speaker == "callee"]
    assert [t.detail["clarify"] for t in callee_turns] == ["act", "confirm", "act", "act"]
    assert [t.detail.get("answers") for t in callee_turns] == [None, None, "ask_price", None]
    assert callee_turns[1].detail["clarify_intent"] == "ask_price"
    # each turn's NLU context: the state, the replies it expects (yes/no first while a question
    # is open), the recognizer's n-best (none from this fake) and its confidence in the text
    states = [c["state"] for c in nlu.contexts]
    assert states == ["greeting", "pitch", "pitch", "price"]
    assert set(script.expected(script.states["pitch"])) == set(nlu.contexts[1]["expected"])
    assert nlu.contexts[2]["expected"][:3] == ("affirm", "deny", "ask_price")
    assert "price_objection" in nlu.contexts[3]["expected"]
    assert all(c["alternatives"] == () and c["dialect"] == "zh" for c in nlu.contexts)
    assert [c["asr_confidence"] for c in nlu.contexts] == [rig.asr.confidence] * 4
