"""Normalization, the rule layer and slot extraction (no model)."""

from __future__ import annotations

import pytest

from nlu.prepare import raw_model_text
from nlu.rules import match_rule
from nlu.slots import extract_slots


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("喂，你好。", "你好"),
        ("我現在在開會！", "我现在在开会"),
        ("ＯＫ，好的😀", "ok好的"),
        ("嗯，那个，多少钱？", "多少钱"),
        ("嗯嗯", "嗯嗯"),  # a bare affirmation is not a filler
        ("好好好好好", "好好"),
        ("。。。！！", ""),
        ("", ""),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert raw_model_text(raw) == expected


def test_normalize_bounds_long_input() -> None:
    assert len(raw_model_text("我想了解一下" * 1000)) <= 256


@pytest.mark.parametrize(
    "text",
    [
        "别再打了",
        "別再打了！",
        "不要再给我打电话了",
        "我不需要以后别打了",
        "以后不要再打来了",
        "别在打了",  # ASR homophone 在/再
        "你们这是骚扰",
        "再打我就投诉你们",
        "我要举报你们",
        "把我的号码删掉",
        "嗯，好的，以后别给我打了",
    ],
)
def test_opt_out_always_complaint_dnc(text: str) -> None:
    assert match_rule(raw_model_text(text)) == "complaint_dnc"


@pytest.mark.parametrize(
    "text",
    [
        "您拨打的电话已关机",
        "您撥打的用戶暫時無法接通，請稍後再撥",
        "对不起，您拨打的号码是空号",
        "请在提示音后留言",
        "Sorry, the number you dialed is power off.",
        "您好，我是机主的智能助理",
    ],
)
def test_carrier_announcements_are_voicemail(text: str) -> None:
    assert match_rule(raw_model_text(text)) == "voicemail"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("你是机器人吧，转人工", "request_human"),
        ("我要投诉，转人工", "complaint_dnc"),
        ("你是人工的吗", None),
        ("我不会投诉你的", None),
        ("能打折吗", None),
        ("我就是机主", None),
        ("好的", None),
        ("", None),
    ],
)
def test_rule_boundaries(text: str, expected: str | None) -> None:
    assert match_rule(raw_model_text(text)) == expected


NOW = {"timezone": "Asia/Shanghai", "now": "2026-11-18T10:15:00"}  # a Wednesday


@pytest.mark.parametrize(
    ("text", "time", "at"),
    [
        ("我现在在开会你明天下午再打给我吧", "明天下午", "2026-11-19T15:00:00+08:00"),
        ("十分钟后打给我", "十分钟后", "2026-11-18T10:25:00+08:00"),
        ("周五下午两点可以，来我们公司", "周五下午两点", "2026-11-20T14:00:00+08:00"),
        ("晚上7点以后再打", "晚上7点以后", "2026-11-18T19:00:00+08:00"),
    ],
)
def test_time_slot(text: str, time: str, at: str) -> None:
    assert extract_slots("busy_callback", text, NOW) == {"time": time, "callback_at": at}


def test_time_slot_only_for_time_intents() -> None:
    assert extract_slots("ask_price", "明天多少钱") == {}
    assert extract_slots("busy_callback", "我很忙") == {}
