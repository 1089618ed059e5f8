"""Per-state decoder hints: a script state's ``asr_hints:`` become the recognizer's prompt while
the call is in that state (``Script.prompt_for`` -> ``RecognizeStream.set_prompt``).

Checked at each seam: the script parser, the scripted stream fake, the real StreamAdapter (the
prompt of each engine decode, over the scripted FakeAsr) and the fallback stream, then a whole
call through CallSession over the adapter."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from callflow.script import Script, ScriptError
from callflow.script_parse import load_script, parse_script
from core.audio import FRAME_BYTES
from nlu.base import INTENTS
from speech.asr.adapter import StreamAdapter
from speech.asr.base import Final
from speech.asr.fake import FakeAsr, FakeStreamAsr, utterance
from speech.asr.fallback import FallbackAdapter
from speech.vad import Endpointer
from tests.test_callflow_session import SILENCE, SPEECH, Rig, callee, loud

MINIMAL: dict[str, Any] = {
    "name": "t",
    "start": "hello",
    "give_up": "bye",
    "asr_hints": ["喂", "你好"],
    "states": {
        "hello": {
            "say": "您好，我是AI助理，方便吗？",
            "asr_hints": ["方便", "不方便！", "  "],
            "on": {"affirm": "bye", "deny": "bye"},
        },
        "bye": {"say": "再见", "end": "not_interested"},
    },
}


def test_a_state_has_its_own_hints_and_falls_back_to_the_default() -> None:
    script = parse_script(MINIMAL, source="t.yaml", known_intents=INTENTS)
    assert script.asr_prompt == "喂。你好。"
    assert script.states["hello"].asr_prompt == "方便。不方便。"
    assert script.states["bye"].asr_prompt is None
    assert script.prompt_for("hello", script.asr_prompt) == "方便。不方便。"
    assert script.prompt_for("bye", script.asr_prompt) == "喂。你好。"
    assert script.prompt_for("bye", None) is None
    assert script.prompt_for(None, "x") == "x"  # before the first state
    assert script.prompt_for("no-such-state", "x") == "x"


@pytest.mark.parametrize("bad", [{"a": 1}, [1, 2], 3])
def test_bad_state_hints_are_a_script_error_naming_the_state(bad: object) -> None:
    data = {**MINIMAL, "states": {**MINIMAL["states"]}}
    data["states"]["hello"] = {**MINIMAL["states"]["hello"], "asr_hints": bad}
    with pytest.raises(ScriptError, match=r"states\.hello: asr_hints"):
        parse_script(data, source="t.yaml", known_intents=INTENTS)


def test_the_demo_script_loads_with_state_hints() -> None:
    script = load_script("callflow/scripts/saas_demo.yaml", known_intents=INTENTS)
    own = {name for name, st in script.states.items() if st.asr_prompt}
    assert own, "the demo script shows per-state hints"
    assert all(script.prompt_for(n, script.asr_prompt) != script.asr_prompt for n in own)


async def test_the_fake_stream_records_the_prompt_of_each_final() -> None:
    asr = FakeStreamAsr([utterance("好的", 0.1, 0.5) + utterance("多少钱", 1.0, 1.4)])
    stream = asr.stream(prompt="A")
    frame = bytes(FRAME_BYTES)
    for _ in range(40):  # 0.8 s: the first utterance only
        stream.push(frame)
    stream.set_prompt("B")
    for _ in range(40):
        stream.push(frame)
    stream.end_input()
    finals = [ev.text async for ev in stream if isinstance(ev, Final)]
    assert finals == ["好的", "多少钱"]
    assert stream.prompts == [("好的", "A"), ("多少钱", "B")]


async def _speak(stream: object, asr: FakeAsr, text: str) -> None:
    """One utterance (1 s tone + 1 s silence) into `stream`, as 20 ms frames."""
    asr.push_script(text)
    audio = SPEECH + SILENCE
    for i in range(0, len(audio), FRAME_BYTES):
        stream.push(audio[i : i + FRAME_BYTES])  # type: ignore[attr-defined]
        await asyncio.sleep(0)


async def test_a_new_prompt_reaches_the_engine_for_the_next_utterance() -> None:
    engine = FakeAsr()
    adapter = StreamAdapter(engine, lambda: Endpointer(classifier=loud, end_silence_ms=300))
    stream = adapter.stream(prompt="问候。")
    finals: list[str] = []

    async def read() -> None:
        async for ev in stream:
            if isinstance(ev, Final):
                finals.append(ev.text)

    reader = asyncio.create_task(read())
    await _speak(stream, engine, "好的")
    async with asyncio.timeout(5):
        while not finals:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
    stream.set_prompt("价格。太贵了。")
    await _speak(stream, engine, "太贵了")
    stream.end_input()
    async with asyncio.timeout(5):
        await reader
    await adapter.aclose()
    assert finals == ["好的", "太贵了"]
    assert [prompt for _, prompt in engine.calls] == ["问候。", "价格。太贵了。"]


async def test_the_fallback_stream_hands_the_prompt_to_its_engine() -> None:
    inner = FakeStreamAsr([utterance("好的", 0.1, 0.5)])
    stream = FallbackAdapter([inner]).stream(prompt="A")
    stream.set_prompt("B")
    assert stream.prompt == "B" and inner.streams[0].prompt == "B"
    await stream.aclose()


async def test_a_call_decodes_each_reply_with_its_state_hints(
    tmp_path: Path, script: Script
) -> None:
    greeting = replace(script.states["greeting"], asr_prompt="问候的回答。")
    pitch = replace(script.states["pitch"], asr_prompt="介绍后的回答。")
    price = replace(script.states["price"], asr_prompt=None)  # no own hints: the call's
    states = {**script.states, "greeting": greeting, "pitch": pitch, "price": price}
    rig = Rig(tmp_path, replace(script, states=states))
    rig.add_lead("13800000001")
    lines = ["喂你好", "多少钱", "可以"]
    driver = asyncio.create_task(callee(rig.tel, rig.asr, lines))
    (res,) = await rig.dialer.run_until_idle(rig.campaign_id)
    await driver
    assert res.outcome == "qualified"
    # the rig's session prompt ("喂，你好。多少钱？") is the default for states without hints
    prompts = [prompt for _, prompt in rig.asr.calls]
    assert prompts == ["问候的回答。", "介绍后的回答。", "喂，你好。多少钱？"]


@pytest.fixture
def script() -> Script:
    return load_script("callflow/scripts/saas_demo.yaml", known_intents=INTENTS)


async def test_without_decoder_hints_no_state_changes_the_prompt(
    tmp_path: Path, script: Script
) -> None:
    greeting = replace(script.states["greeting"], asr_prompt="问候的回答。")
    states = {**script.states, "greeting": greeting}

    class Plain(Rig):
        def session_options(self, lead: Any) -> dict[str, Any]:
            return {**super().session_options(lead), "asr_prompt": None, "decoder_hints": False}

    rig = Plain(tmp_path, replace(script, states=states))
    rig.add_lead("13800000001")
    driver = asyncio.create_task(callee(rig.tel, rig.asr, ["喂你好", "多少钱", "可以"]))
    (res,) = await rig.dialer.run_until_idle(rig.campaign_id)
    await driver
    assert res.outcome == "qualified"
    assert [prompt for _, prompt in rig.asr.calls] == [None, None, None]


def test_the_node_decodes_with_hints_only_when_configured(tmp_path: Path, script: Script) -> None:
    from app.config import load_config
    from app.engines import make_session_factory
    from nlu.fake import FakeClassifier

    for on in (False, True):
        cfg = load_config(None, env={"CALLBOT__SPEECH__ASR_HINTS": str(on).lower()})
        assert cfg.speech.asr_hints is on
        factory = make_session_factory(cfg, script, FakeStreamAsr(), FakeClassifier(), None)  # type: ignore[arg-type]
        session = factory(object(), _Lead())  # type: ignore[arg-type]
        assert session._asr_prompt == (script.asr_prompt if on else None)
        assert session._decoder_hints is on


class _Lead:
    lead_id = 1
    name = ""
    extra: dict[str, str] = {}
    timezone = "Asia/Shanghai"
