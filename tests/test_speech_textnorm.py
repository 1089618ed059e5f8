"""Text normalization: t2s, transcript cleanup, CER, numbers for TTS."""

from __future__ import annotations

import pytest

from speech.textnorm import (
    cer,
    digits_to_chinese,
    integer_to_chinese,
    normalize_transcript,
    spell_numbers,
    to_simplified,
)


def test_traditional_to_simplified() -> None:
    assert to_simplified("別再打了，多少錢") == "别再打了，多少钱"


def test_normalize_transcript() -> None:
    assert normalize_transcript(" 我現在 很忙, 別再打了? ") == "我现在很忙，别再打了？"


def test_cer_ignores_punctuation_and_script() -> None:
    assert cer("喂，你好", "喂 你好!") == 0.0
    assert cer("多少钱", "多少錢") == 0.0
    assert cer("别再打了", "别太大了") == pytest.approx(0.5)
    assert cer("", "") == 0.0


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "零"), (10, "十"), (15, "十五"), (101, "一百零一"), (200, "两百"), (2000, "两千"),
     (12800, "一万两千八百"), (20000, "两万"), (100100, "十万零一百"), (3050, "三千零五十")],
)  # fmt: skip
def test_integer_to_chinese(n: int, text: str) -> None:
    assert integer_to_chinese(n) == text


def test_spell_numbers() -> None:
    assert digits_to_chinese("13812345678", phone=True) == "幺三八幺二三四五六七八"
    assert spell_numbers("价格3.5万，打8折，下午3:30，20%") == (
        "价格三点五万，打八折，下午三点三十分，百分之二十"
    )
    assert spell_numbers("电话13812345678") == "电话幺三八幺二三四五六七八"
