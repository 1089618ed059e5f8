"""The one text normaliser (core.text): t2s, width, transcript punctuation and spacing."""

from __future__ import annotations

import pytest

from core.text import canonical, to_simplified, to_traditional


def test_traditional_to_simplified() -> None:
    assert to_simplified("別再打了，多少錢") == "别再打了，多少钱"
    assert to_traditional("说话") == "說話"
    assert to_simplified("") == "" and to_traditional("") == ""


def test_canonical_transcript() -> None:
    assert canonical(" 我現在 很忙, 別再打了? ") == "我现在很忙，别再打了？"


@pytest.mark.parametrize("raw", ["ＯＫ，好的", "我現在在開會！", " 多少 钱 ? ", "ok 好 的"])
def test_canonical_width_and_idempotence(raw: str) -> None:
    once = canonical(raw)
    assert canonical(once) == once
    assert "Ｏ" not in once and "現" not in once and "開" not in once


def test_canonical_full_width_letters() -> None:
    assert canonical("ＯＫ，好的") == "OK，好的"
