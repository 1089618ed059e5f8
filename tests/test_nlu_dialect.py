"""The NLU maps a caller's dialect words to Mandarin from ``context["dialect"]``.

The call session used to rewrite the transcript itself (``normalize_dialect(text, dialect)``)
before ``classify``; now it passes the dialect in the context. A phrase must get the same
result either way, and the mapping must change results where it matters.
"""

from __future__ import annotations

from typing import Any

import pytest

from core.dialect import normalize_dialect
from core.text import canonical
from nlu import FakeClassifier, IntentClassifier, load_classifier
from nlu.prepare import spoken_mandarin

CTX: dict[str, Any] = {"timezone": "Asia/Shanghai", "now": "2026-11-18T10:15:00"}
PHRASES = [
    ("唔使喇，我而家好忙", "yue"),
    ("几多钱？", "yue"),
    ("听日下昼再打俾我啦", "yue"),
    ("冇兴趣，唔该", "yue"),
    ("系，可以", "yue"),
    ("好多钱", "southwestern"),
    ("阿拉勿要", "wu"),
    ("唔该，我冇時間", None),  # dialect unknown: only the entries safe in Mandarin
]


@pytest.fixture(scope="module")
def committed() -> IntentClassifier:
    return load_classifier()  # nlu/models/student-int8: the student + linear ensemble


@pytest.mark.parametrize(("said", "dialect"), PHRASES)
def test_context_dialect_matches_the_sessions_old_rewrite(
    committed: IntentClassifier, said: str, dialect: str | None
) -> None:
    heard = canonical(said)  # what the recognizer emits
    new = committed.classify(heard, {**CTX, "dialect": dialect})
    old = committed.classify(normalize_dialect(heard, dialect), CTX)
    assert new == old


def test_the_mapping_changes_what_it_should(committed: IntentClassifier) -> None:
    sichuan = committed.classify("好多钱", {**CTX, "dialect": "sichuan"})
    assert sichuan.intent == "ask_price"  # "how much", not "a lot of money"
    yue = committed.classify("听日下昼再打俾我啦", {**CTX, "dialect": "yue"})
    assert yue.intent == "busy_callback"
    assert yue.slots["time"] == "明天下午"
    assert yue.slots["callback_at"] == "2026-11-19T15:00:00+08:00"


def test_fake_classifier_maps_dialect_too() -> None:
    fake = FakeClassifier()
    assert fake.classify("唔需要", {"dialect": "yue"}).intent == "deny"
    assert fake.classify("唔需要").intent == "other"  # no dialect key: not a caller's speech


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        (None, "系统好多钱"),  # not a call: left alone
        ({}, "系统好多钱"),
        ({"dialect": None}, "系统好多钱"),  # unknown dialect: 系统 protected, 好多钱 not safe
        ({"dialect": "zh"}, "系统好多钱"),  # a language code, no dialect: same as unknown
        ({"dialect": "sichuan"}, "系统多少钱"),
    ],
)
def test_spoken_mandarin_reads_the_context(context: dict[str, Any] | None, expected: str) -> None:
    assert spoken_mandarin("系统好多钱", context) == expected


def test_unknown_dialect_applies_safe_entries() -> None:
    assert spoken_mandarin("冇时间", {"dialect": None}) == "没时间"
    assert spoken_mandarin("冇时间", {"dialect": "zh"}) == "没时间"
    assert spoken_mandarin("冇时间", {"timezone": "Asia/Shanghai"}) == "冇时间"
