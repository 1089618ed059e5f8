"""Numbers read aloud: amounts, prices, phone numbers, dates, times, percentages."""

from __future__ import annotations

import pytest

from speech.tts.normalize import (
    digits_to_chinese,
    integer_to_chinese,
    normalize_for_tts,
    read_money,
)


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "零"), (10, "十"), (15, "十五"), (101, "一百零一"), (200, "两百"), (2000, "两千"),
     (12800, "一万两千八百"), (20000, "两万"), (100100, "十万零一百"), (3050, "三千零五十"),
     (-3, "负三"), (120000000, "一亿两千万")],
)  # fmt: skip
def test_integer_to_chinese(n: int, text: str) -> None:
    assert integer_to_chinese(n) == text


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("¥3,000", "三千元"),
        ("￥3000", "三千元"),
        ("3000元", "三千元"),
        ("2.5万", "两万五千"),
        ("2.5万元", "两万五千元"),
        ("¥2.5万", "两万五千元"),
        ("1.2亿", "一亿两千万"),
        ("每月300元", "每月三百元"),
        ("每月2块", "每月两块"),
        ("¥12.50", "十二元五角"),
        ("0.99元", "九角九分"),
        ("3.05元", "三元零五分"),
        ("¥1,299.00", "一千二百九十九元"),
        ("3000块钱", "三千块钱"),
        ("2.125万", "两万一千二百五十"),
        ("2.12345万", "二点一二三四五万"),
    ],
)
def test_prices_are_read_as_amounts(written: str, spoken: str) -> None:
    assert normalize_for_tts(written) == spoken


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("138 0013 8000", "幺三八，零零幺三，八零零零"),
        ("138-0013-8000", "幺三八，零零幺三，八零零零"),
        ("13800138000", "幺三八，零零幺三，八零零零"),
        ("+86 138 0013 8000", "幺三八，零零幺三，八零零零"),
        ("400-123-4567", "四零零，幺二三，四五六七"),
        ("010-12345678", "零幺零，幺二三四五六七八"),
        ("工号0012345", "工号零零幺二三四五"),
    ],
)
def test_phone_numbers_digit_by_digit(written: str, spoken: str) -> None:
    assert normalize_for_tts(written) == spoken


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("11月23日 下午3:30", "十一月二十三日 下午三点三十分"),
        ("2026年11月23日", "二零二六年十一月二十三日"),
        ("2026-11-23", "二零二六年十一月二十三日"),
        ("2026/1/5", "二零二六年一月五日"),
        ("12月1号", "十二月一号"),
        ("2026年", "二零二六年"),
        ("2:05", "两点零五分"),
        ("14：00", "十四点"),
        ("9:30:15", "九点三十分十五秒"),
        ("2月", "二月"),
        ("2个月", "两个月"),
        ("下午2点", "下午两点"),
        ("第2次", "第二次"),
    ],
)
def test_dates_and_times(written: str, spoken: str) -> None:
    assert normalize_for_tts(written) == spoken


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("20%", "百分之二十"),
        ("12.5％", "百分之十二点五"),
        ("打8折", "打八折"),
        ("8.5折", "八五折"),
        ("3-5天", "三到五天"),
        ("3～5个工作日", "三到五个工作日"),
        ("价格3.5万，打8折，下午3:30，20%", "价格三万五千，打八折，下午三点三十分，百分之二十"),
        ("24小时在线", "二十四小时在线"),
        ("AI客服", "AI客服"),
        ("价格：300元", "价格：三百元"),
    ],
)
def test_percentages_discounts_ranges_and_the_rest(written: str, spoken: str) -> None:
    assert normalize_for_tts(written) == spoken


def test_idempotent_and_no_digits_left() -> None:
    text = "标准版每月300元，¥2.5万/年，电话138 0013 8000，11月23日下午3:30前有效，8折"
    once = normalize_for_tts(text)
    assert not any(c.isdigit() and c.isascii() for c in once)
    assert normalize_for_tts(once) == once


def test_helpers() -> None:
    assert digits_to_chinese("13812345678", phone=True) == "幺三八幺二三四五六七八"
    assert digits_to_chinese("2025") == "二零二五"
    assert read_money("2") == "两元"
    assert read_money("0.00") == "零元"
