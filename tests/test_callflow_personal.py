"""Personal lines: lead fields and slots in what the robot says, with neutral fallbacks."""

from __future__ import annotations

from typing import Any

import pytest

from callflow.machine import Answered, DialogState, PlaybackFinished, Say, UserSaid, step
from callflow.personal import is_template, lead_fields, render, surname
from callflow.script import Script, ScriptError
from callflow.script_parse import load_script, parse_script
from nlu.base import INTENTS


@pytest.mark.parametrize(
    ("name", "expected"),
    [("王小明", "王"), ("欧阳娜娜", "欧阳"), ("司马光", "司马"), ("司马", "司"),
     ("John Smith", "Smith"), ("interested", None), ("13800000001", None), ("", None)],
)  # fmt: skip
def test_surname(name: str, expected: str | None) -> None:
    assert surname(name) == expected


def test_lead_fields_from_the_name_and_the_file_columns() -> None:
    fields = lead_fields(
        "王小明", {"性别": "男", "公司名称": "云帆贸易", "城市": "杭州", "行业": "零售"}
    )
    assert fields["title"] == "王先生" and fields["honorific"] == "先生"
    assert fields["company"] == "云帆贸易" and fields["city"] == "杭州"
    assert fields["行业"] == "零售"  # any custom column, under its header
    assert lead_fields("李娜", {"Gender": "F"})["title"] == "李女士"
    unknown = lead_fields("王小明", {"性别": "未知"})
    assert "title" not in unknown and "honorific" not in unknown and unknown["surname"] == "王"
    assert lead_fields("", {}) == {}


LINE = "{lead.title|您}好，我是AI助理。{lead.company|贵公司}在{lead.city|您的城市}的业务还好吗？"


@pytest.mark.parametrize(
    ("lead", "expected"),
    [
        (
            {"name": "王小明", "性别": "男", "公司": "云帆贸易", "城市": "杭州"},
            "王先生好，我是AI助理。云帆贸易在杭州的业务还好吗？",
        ),
        ({"name": "王小明"}, "您好，我是AI助理。贵公司在您的城市的业务还好吗？"),
        ({"name": "", "性别": "女"}, "您好，我是AI助理。贵公司在您的城市的业务还好吗？"),
        (
            {"name": "张伟", "sex": "female", "city": "成都"},
            "张女士好，我是AI助理。贵公司在成都的业务还好吗？",
        ),
    ],
)
def test_missing_fields_fall_back_to_neutral_words(lead: dict[str, Any], expected: str) -> None:
    fields = lead_fields(lead.pop("name"), lead)
    out = render(LINE, lead=fields, slots={})
    assert out == expected and "{" not in out


def test_slots_are_said_as_words() -> None:
    slots = {
        "time": "明天下午",
        "callback_at": "2026-11-19T15:30:00+08:00",
        "products": ["CRM", "小程序"],
        "budget": {"value": 20000.0, "text": "两万"},
        "decision_maker": True,  # a flag is not sayable: the fallback
    }
    text = "/".join(
        ["{slot.time|改天}", "{slot.callback_at|}", "{slot.products|}", "{slot.budget|}"]
        + ["{slot.decision_maker|x}"]
    )
    assert render(text, lead={}, slots=slots) == "明天下午/11月19日15点30分/CRM、小程序/两万/x"
    assert render("{slot.time}", lead={}, slots={}, fallbacks={"slot.time": "改天"}) == "改天"


BASE: dict[str, Any] = {
    "name": "personal_test",
    "start": "greeting",
    "give_up": "end",
    "vars": {"agent": "小安"},
    "fallbacks": {"lead.company": "贵公司"},
    "states": {
        "greeting": {
            "say": "{lead.title|您}好，我是AI助理{agent}，想给{lead.company}介绍个产品。",
            "on": {"busy_callback": "end"},
            "default": "end",
        },
        "end": {
            "say": "好的，那我们{slot.time|改天}再联系{lead.title|您}。再见！",
            "end": "callback",
        },
    },
}


@pytest.fixture(scope="module")
def script() -> Script:
    return parse_script(BASE, source="personal.yaml", known_intents=INTENTS)


def test_the_machine_renders_lines_from_the_lead_and_the_slots(script: Script) -> None:
    lead = lead_fields("欧阳娜娜", {"性别": "女", "公司": "星河科技"})
    state, actions = step(script, DialogState(lead=lead), Answered())
    assert [a.text for a in actions if isinstance(a, Say)] == [
        "欧阳女士好，我是AI助理小安，想给星河科技介绍个产品。"
    ]
    state, _ = step(script, state, PlaybackFinished(state.speaking or 0))
    _, actions = step(script, state, UserSaid("busy_callback", 0.95, "", {"time": "明天下午"}))
    assert [a.text for a in actions if isinstance(a, Say)] == [
        "好的，那我们明天下午再联系欧阳女士。再见！"
    ]


def test_an_unknown_lead_hears_neutral_words(script: Script) -> None:
    _, actions = step(script, DialogState(), Answered())
    assert [a.text for a in actions if isinstance(a, Say)] == [
        "您好，我是AI助理小安，想给贵公司介绍个产品。"
    ]


def test_only_the_neutral_form_of_a_personal_line_is_pre_rendered(script: Script) -> None:
    lines = script.lines()
    assert not any(is_template(x) or "{" in x for x in lines)
    assert "您好，我是AI助理小安，想给贵公司介绍个产品。" in lines  # no lead: a fixed line
    assert "好的，那我们改天再联系您。再见！" in lines
    assert not any("女士" in x or "先生" in x for x in lines)


@pytest.mark.parametrize(
    ("say", "message"),
    [
        ("{lead.city}您好，我是AI助理", r"\{lead.city\} has no fallback"),
        ("{name}您好，我是AI助理", "undefined variable 'name'"),
        ("{lead.}您好，我是AI助理", r"bad placeholder"),
        ("{slot.shoe_size|}您好，我是AI助理", "unknown slot 'shoe_size'"),
        ("您好，我是AI助理}", r"unmatched"),
    ],
)
def test_bad_placeholders_are_script_errors(say: str, message: str) -> None:
    data = {**BASE, "states": {**BASE["states"], "greeting": {**BASE["states"]["greeting"]}}}
    data["states"]["greeting"]["say"] = say
    with pytest.raises(ScriptError, match=message):
        parse_script(data, source="personal.yaml", known_intents=INTENTS)


def test_the_demo_greets_by_surname_when_known() -> None:
    demo = load_script("callflow/scripts/saas_demo.yaml", known_intents=INTENTS)
    known = DialogState(lead=lead_fields("王小明", {"性别": "男"}))
    _, actions = step(demo, known, Answered())
    greeting = [a.text for a in actions if isinstance(a, Say)][-1]
    assert greeting.startswith("王先生您好")
    _, actions = step(demo, DialogState(lead=lead_fields("interested", {})), Answered())
    assert [a.text for a in actions if isinstance(a, Say)][-1].startswith("您好")
