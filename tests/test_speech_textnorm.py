"""ASR-side text normalization: t2s, transcript cleanup, CER (TTS side: *_tts_normalize)."""

from __future__ import annotations

import pytest

from speech.textnorm import cer, normalize_transcript, to_simplified


def test_traditional_to_simplified() -> None:
    assert to_simplified("別再打了，多少錢") == "别再打了，多少钱"


def test_normalize_transcript() -> None:
    assert normalize_transcript(" 我現在 很忙, 別再打了? ") == "我现在很忙，别再打了？"


def test_cer_ignores_punctuation_and_script() -> None:
    assert cer("喂，你好", "喂 你好!") == 0.0
    assert cer("多少钱", "多少錢") == 0.0
    assert cer("别再打了", "别太大了") == pytest.approx(0.5)
    assert cer("", "") == 0.0
