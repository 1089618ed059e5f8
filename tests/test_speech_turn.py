"""looks_complete: the text side of adaptive endpointing."""

from __future__ import annotations

import pytest

from speech.turn import looks_complete


@pytest.mark.parametrize(
    "text",
    ["多少钱？", "好的", "可以，介绍一下", "我不需要，以后别打了", "明天再打给我吧。", "喂", "OK"],
)
def test_finished_replies(text: str) -> None:
    assert looks_complete(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "。",
        "我想问一下那个",
        "你说的那个...",
        "价格的话",
        "可以，但是",
        "我觉得",
        "嗯",
        "好的，然后，",
        "傲哥，你…",
        "我们这边",
    ],
)
def test_replies_that_trail_off(text: str) -> None:
    assert not looks_complete(text)
