"""Personal lines (a lead's name, what the callee said) never reach the prompt cache.

The machine marks a ``Say`` personal when rendering put a lead field's or a slot's own value
in (a fallback is neutral); the playback speaks such a part with ``speak(text, cache=False)``;
the cache keeps neutral lines, owner-only. The call test runs the real CallSession and Dialer
over the fake telephony, fake ASR and fake TTS (the real-SIP call:
tests/test_e2e_conversation.py).
"""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path
from typing import Any

import pytest

from callflow.machine import Answered, DialogState, PlaybackFinished, Say, UserSaid, step
from callflow.personal import lead_fields, render_marked
from callflow.script import Script
from callflow.script_parse import load_script, parse_script
from campaigns.store import ClaimedLead
from nlu.base import INTENTS
from speech import audio
from speech.cache import PromptCache
from speech.tts.fake import FakeTts
from tests.test_callflow_session import Rig, callee

NAMED = lead_fields("王伟", {"性别": "男", "公司": "星河科技"})


def says(actions: list[Any]) -> list[Say]:
    return [a for a in actions if isinstance(a, Say)]


def test_render_marked_tells_a_value_from_a_fallback() -> None:
    line = "{lead.title|}您好，{lead.company|贵公司}的业务还好吗？"
    assert render_marked(line, lead=NAMED, slots={}) == ("王先生您好，星河科技的业务还好吗？", True)
    assert render_marked(line, lead={}, slots={}) == ("您好，贵公司的业务还好吗？", False)
    assert render_marked("{slot.time|改天}再联系", lead={}, slots={"time": "明天"})[1] is True
    assert render_marked("没有占位符", lead=NAMED, slots={}) == ("没有占位符", False)


@pytest.fixture(scope="module")
def demo() -> Script:
    return load_script("callflow/scripts/saas_demo.yaml", known_intents=INTENTS)


def test_the_machine_marks_personal_lines_only(demo: Script) -> None:
    state, actions = step(demo, DialogState(lead=NAMED), Answered())
    (greeting,) = says(actions)
    assert greeting.text.startswith("王先生您好") and greeting.personal
    assert greeting.part_is_personal(0)
    _, actions = step(demo, DialogState(lead=lead_fields("王伟", {})), Answered())
    (neutral,) = says(actions)  # no gender: the neutral greeting, a fixed (cached) line
    assert not neutral.personal and neutral.text in demo.lines()
    state, _ = step(demo, state, PlaybackFinished(greeting.say_id))
    _, actions = step(demo, state, UserSaid("affirm", 0.95, "好的"))
    assert [s.personal for s in says(actions)] == [False]  # the pitch names nobody


def test_a_split_line_marks_its_personal_part_only() -> None:
    data = {
        "name": "split",
        "start": "greeting",
        "give_up": "greeting",
        "states": {
            "greeting": {
                "say": [{"text": "我是AI机器人。", "interruptible": False}, "{lead.title|}您好。"],
                "end": "callback",
            }
        },
    }
    script = parse_script(data, source="split.yaml", known_intents=INTENTS)
    _, actions = step(script, DialogState(lead=NAMED), Answered())
    (say,) = says(actions)
    assert [say.part_is_personal(i) for i in range(len(say.parts()))] == [False, True]
    assert say.personal and say.parts()[1][0] == "王先生您好。"


async def test_speak_uncached_keeps_nothing(tmp_path: Path) -> None:
    tts = FakeTts()
    cache = PromptCache(tts, tmp_path / "cache")
    line = "王先生您好"
    for _ in range(2):
        pcm = b"".join([c async for c in cache.speak(line, cache=False)])
        assert pcm.startswith(tts.render(line))  # whole 20 ms frames: padded at the end
    assert tts.calls == [line, line]  # rendered each time, never kept
    assert not cache.contains(line) and not (tmp_path / "cache").exists()
    assert (cache.stats.uncached, cache.stats.requests) == (2, 0)


async def test_cache_files_are_owner_only(tmp_path: Path) -> None:
    cache = PromptCache(FakeTts(), tmp_path / "cache")
    await cache.get("您好，请讲")
    path = cache.path_for("您好，请讲")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


class NamedRig(Rig):
    """The demo's Rig, its sessions given the lead's fields as the node's factory does."""

    def __init__(self, tmp_path: Path, script: Script, leads: dict[int, dict[str, str]]) -> None:
        super().__init__(tmp_path, script)
        self.leads = leads

    def session_options(self, lead: ClaimedLead) -> dict[str, Any]:
        return {"asr_language": "zh", "lead": self.leads.get(lead.lead_id, {})}


def cached_pcm(folder: Path) -> list[bytes]:
    return [audio.read_wav(p).pcm for p in sorted(folder.glob("*.wav"))]


async def test_a_named_call_leaves_no_personal_line_in_the_cache(
    tmp_path: Path, demo: Script
) -> None:
    rig = NamedRig(tmp_path, demo, {})
    tts = rig.prompts.engine
    assert isinstance(tts, FakeTts)
    await rig.prompts.prefetch(demo.lines())  # what the node does for a campaign
    lead_id = rig.add_lead("13800000001")
    rig.leads[lead_id] = NAMED
    driver = asyncio.create_task(
        callee(rig.tel, rig.asr, ["好的你说吧", "可以，明天来我公司聊演示"])
    )
    (res,) = await rig.dialer.run_until_idle(rig.campaign_id)
    await driver
    robot = [t.text for t in res.turns if t.speaker == "robot"]
    personal = robot[0]
    assert personal.startswith("王先生您好") and res.outcome == "qualified"
    folder = tmp_path / "cache"
    files = sorted(folder.iterdir())
    assert files and all(f.suffix == ".wav" for f in files)  # no index, no temp files left
    assert not rig.prompts.contains(personal)
    assert tts.render(personal) not in cached_pcm(folder)  # not under any name either
    assert all("王".encode() not in f.read_bytes() for f in files)
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    assert rig.prompts.stats.uncached == 1  # the greeting alone
    assert robot[1] in demo.lines() and rig.prompts.contains(robot[1])
    # the pitch came from the cache: nothing but the personal greeting was rendered in the call
    assert [line for line in tts.calls if line not in demo.lines()] == [personal]
