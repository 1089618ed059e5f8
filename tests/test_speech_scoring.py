"""Transcript comparison keys and CER (normalisation itself: tests/test_core_text.py)."""

from __future__ import annotations

import pytest

from speech.scoring import cer, edit_distance, strip_punct


def test_cer_ignores_punctuation_and_script() -> None:
    assert cer("喂，你好", "喂 你好!") == 0.0
    assert cer("多少钱", "多少錢") == 0.0
    assert cer("别再打了", "别太大了") == pytest.approx(0.5)
    assert cer("", "") == 0.0


def test_keys_and_distance() -> None:
    assert strip_punct("Ｏk，好 的！") == "ok好的"
    assert edit_distance("多少钱", "多钱") == 1
