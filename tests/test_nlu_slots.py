"""Slots and per-turn scores: callback time with a fixed clock, contacts, amounts, products."""

from __future__ import annotations

from datetime import datetime

import pytest

from nlu.cnnum import parse_number
from nlu.entities import amount, contacts, entity_slots, products
from nlu.sentiment import scores
from nlu.slots import extract_slots
from nlu.timeparse import parse_time, resolve_now

# Wednesday 18 Nov 2026, 10:15 in Shanghai
CTX = {"timezone": "Asia/Shanghai", "now": "2026-11-18T10:15:00"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("明天下午三点", "2026-11-19T15:00:00+08:00"),
        ("下周一上午", "2026-11-23T10:00:00+08:00"),
        ("过两个小时", "2026-11-18T12:15:00+08:00"),
        ("晚上七点以后", "2026-11-18T19:00:00+08:00"),
        ("半小时后", "2026-11-18T10:45:00+08:00"),
        ("一个半小时以后", "2026-11-18T11:45:00+08:00"),
        ("后天", "2026-11-20T10:00:00+08:00"),
        ("周五10:30", "2026-11-20T10:30:00+08:00"),
        ("星期三下午两点半", "2026-11-18T14:30:00+08:00"),
        ("三点", "2026-11-18T15:00:00+08:00"),  # a bare 1-6 o'clock is afternoon
        ("九点", "2026-11-19T09:00:00+08:00"),  # already past today: tomorrow
        ("明早八点", "2026-11-19T08:00:00+08:00"),
        ("今晚", "2026-11-18T19:00:00+08:00"),
        ("待会", "2026-11-18T10:45:00+08:00"),
        ("下个月", "2026-12-01T10:00:00+08:00"),
        ("礼拜天", "2026-11-22T10:00:00+08:00"),
        ("听日下昼", "2026-11-19T10:00:00+08:00"),  # Cantonese "tomorrow"
    ],
)
def test_callback_time_resolves_to_iso_with_offset(text: str, expected: str) -> None:
    found = parse_time(text, resolve_now(CTX))
    assert found is not None
    assert found.when.isoformat() == expected
    assert datetime.fromisoformat(found.when.isoformat()).utcoffset() is not None


def test_time_follows_the_leads_timezone() -> None:
    ctx = {"timezone": "America/New_York", "now": "2026-11-18T10:15:00-05:00"}
    found = parse_time("明天下午三点", resolve_now(ctx))
    assert found is not None and found.when.isoformat() == "2026-11-19T15:00:00-05:00"
    utc_now = {"timezone": "Asia/Shanghai", "now": "2026-11-18T02:15:00+00:00"}  # 10:15 local
    found = parse_time("明天下午三点", resolve_now(utc_now))
    assert found is not None and found.when.isoformat() == "2026-11-19T15:00:00+08:00"


def test_bad_timezone_falls_back_and_no_time_is_none() -> None:
    assert resolve_now({"timezone": "Mars/Olympus"}).utcoffset() is not None
    now = resolve_now(CTX)
    for text in ("便宜一点", "快一点", "多少钱", ""):
        assert parse_time(text, now) is None


def test_slots_carry_callback_at_for_time_intents_only() -> None:
    slots = extract_slots("busy_callback", "我在开会，明天下午三点再打吧", CTX)
    assert slots["time"] == "明天下午三点"
    assert slots["callback_at"] == "2026-11-19T15:00:00+08:00"
    assert "callback_at" not in extract_slots("ask_price", "明天下午三点多少钱", CTX)
    assert extract_slots("voicemail", "请在提示音后留言", CTX) == {}


@pytest.mark.parametrize(
    ("text", "value", "lo", "hi"),
    [
        ("两万五", 25000, 25000, 25000),
        ("3k", 3000, 3000, 3000),
        ("十", 10, 10, 10),
        ("一百零八", 108, 108, 108),
        ("3.5万", 35000, 35000, 35000),
        ("3万5", 35000, 35000, 35000),
    ],
)
def test_numbers(text: str, value: int, lo: int, hi: int) -> None:
    parsed = parse_number(text)
    assert parsed is not None and parsed[0] == value


@pytest.mark.parametrize(
    ("text", "lo", "hi"),
    [
        ("预算两万五左右", 25000, 25000),
        ("3k以内吧", 3000, 3000),
        ("十来万的样子", 100000, 200000),
        ("一年大概三四千块", 3000, 4000),
        ("两到三万", 20000, 30000),
        ("太贵了，一万多谁买", 10000, 20000),
        ("100多块钱", 100, 200),
    ],
)
def test_amounts(text: str, lo: float, hi: float) -> None:
    found = amount(text)
    assert found is not None and (found["min"], found["max"]) == (lo, hi)


def test_not_amounts() -> None:
    for text in ("我们有两万个客户", "等三天", "三点以后", "13812345678", "这个多少钱"):
        assert amount(text) is None, text


def test_contacts_and_products() -> None:
    assert contacts("我微信号是abc_123456") == {"wechat": "abc_123456"}
    assert contacts("打我手机138-1234-5678") == {"phone": "13812345678"}
    assert contacts("幺三八一二三四五六七八九") == {"phone": "13812345678"}
    assert contacts("邮箱是Foo.Bar@qq.com") == {"email": "foo.bar@qq.com"}
    assert products("你们的crm系统多少钱") == ["crm", "系统"]
    assert entity_slots("那个智能门锁怎么卖", {"products": ["智能门锁"]})["products"] == [
        "智能门锁"
    ]


def test_sentiment_scores_are_bounded_and_ordered() -> None:
    angry = scores({"complaint_dnc": 1.0}, "烦死了别打了骚扰")
    keen = scores({"ask_price": 0.9, "affirm": 0.1}, "挺好的多少钱我想了解一下")
    unsure = scores({"hesitate": 0.8}, "我再考虑考虑回头再说")
    for s in (angry, keen, unsure):
        assert set(s) == {"interest", "hesitation", "annoyance"}
        assert all(0.0 <= v <= 1.0 for v in s.values())
    assert angry["annoyance"] > 0.9 > keen["annoyance"]
    assert keen["interest"] > 0.8 > angry["interest"]
    assert unsure["hesitation"] > max(keen["hesitation"], angry["hesitation"])
    assert scores({"affirm": 0.5}, "不感兴趣")["interest"] < 0.3
