"""Dialect lexicon: dialect words -> Mandarin, protection of Mandarin words, reverse variants."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest
import yaml

from core.dialect import (
    DIALECTS,
    canonical_dialect,
    dialect_variants,
    lexicon,
    normalize_dialect,
    to_dialect,
)
from core.text import canonical, to_simplified


@pytest.mark.parametrize(
    ("said", "dialect", "mandarin"),
    [
        ("唔該，我冇時間", None, "谢谢，我没时间"),  # traditional: the recognizer's canonical()
        ("唔使喇，我而家好忙", "yue", "不用了，我现在好忙"),
        ("你講咩呀？", "cantonese", "你说什么呀？"),
        ("佢系我老细", "yue", "他是我老板"),
        ("听日下昼再打嚟啦", None, "明天下午再打来啦"),
        ("几多钱？有冇优惠？", None, "多少钱？有没有优惠？"),
        ("唔使客气", None, "不客气"),  # longest match
        ("巴适得很，要得", None, "很好，好的"),
        ("你做啥子嘛", "sichuan", "你干什么吧"),
        ("好多钱", "sichuan", "多少钱"),  # only for a southwestern caller
        ("莫得兴趣，莫打了", None, "没兴趣，别打了"),
        ("你嘎哈呢？咋整", None, "你干什么呢？怎么办"),
        ("整明白了再唠", "dongbei", "弄明白了再聊"),
        ("侬好，阿拉勿要", None, "你好，我们不要"),
        ("伊讲勿要，是伐", "wu", "他说不要，是吗"),
        ("几钿？", "shanghai", "多少钱？"),
        ("好的咩！", None, "好的吗！"),
    ],
)
def test_dialect_words_become_mandarin(said: str, dialect: str | None, mandarin: str) -> None:
    assert normalize_dialect(canonical(said), dialect) == mandarin


@pytest.mark.parametrize(
    "mandarin",
    ["阿拉伯语", "请勿打扰", "我们的系统很好", "重点解决问题", "你要得到吗", "这一点算是",
     "转人工", "伊朗和伊拉克", "整个方案要调整", "好多钱都花了", "金额和额度", "讲座的知识",
     "步伐很快", "明朝的历史", "这边个别客户", "周边处理"],
)  # fmt: skip
@pytest.mark.parametrize("dialect", [None, *DIALECTS])
def test_mandarin_words_are_protected(mandarin: str, dialect: str | None) -> None:
    assert normalize_dialect(mandarin, dialect) == mandarin


def test_given_dialect_only_entries_need_the_dialect() -> None:
    assert normalize_dialect("好多钱") == "好多钱"  # Mandarin: a lot of money
    assert normalize_dialect("佢系") == "他是"
    assert normalize_dialect("系") == "系" and normalize_dialect("系", "yue") == "是"
    assert normalize_dialect("整一下") == "整一下"
    assert normalize_dialect("整一下", "northeastern") == "弄一下"


def test_script_lines_and_replies_are_left_alone() -> None:
    script = yaml.safe_load(Path("callflow/scripts/saas_demo.yaml").read_text("utf-8"))
    lines = list(script["asr_hints"]) + [script["reprompt"]]
    lines += [st["say"] for st in script["states"].values()]
    for line in lines:
        assert normalize_dialect(line) == line


def test_lexicon_shape() -> None:
    entries = lexicon()
    counts = Counter(e.dialect for e in entries)
    assert set(counts) == set(DIALECTS) and len(entries) >= 400
    assert min(counts.values()) >= 60
    for e in entries:
        assert to_simplified(e.source) == e.source and e.source != e.mandarin
    safe = [e.source for e in entries if e.safe]
    assert len(safe) >= 350


def test_aliases() -> None:
    assert canonical_dialect("Cantonese") == "yue" and canonical_dialect("粤语") == "yue"
    assert canonical_dialect(None) is None
    with pytest.raises(ValueError, match="unknown dialect"):
        normalize_dialect("你好", "klingon")
    assert normalize_dialect("") == ""


def test_reverse_variants_round_trip() -> None:
    text = "不用了，我现在没时间，你明天再打来吧"
    spans = dialect_variants(text, "yue")
    assert [text[a:b] for a, b, _ in spans] == ["不用了", "现在", "没时间", "明天", "打来"]
    rng = random.Random(0)
    variants = {to_dialect(text, "yue", rng=rng, probability=1.0) for _ in range(20)}
    assert len(variants) > 1 and text not in variants
    for variant in variants:
        assert normalize_dialect(variant, "yue") == text
    assert to_dialect(text, "wu", rng=rng, probability=0.0) == text


@pytest.mark.parametrize(
    ("heard", "dialect", "mandarin"),
    [
        ("无事了，无该", "yue", "不用了，谢谢"),  # 唔使喇，唔该 as Whisper writes it
        ("某个时间，明天再说嘛", "sichuan", "没时间，明天再说吧"),  # 莫得时间
        ("某个那么多钱", "southwestern", "没有那么多钱"),
        ("莫的兴趣", None, "没有兴趣"),  # not a Mandarin word: safe
        ("谢谢农", None, "谢谢你"),
        ("农讲啥", "wu", "你说什么"),
        ("老鼻之钱了", None, "很多钱了"),
    ],
)
def test_recognizer_spellings_of_dialect_words(
    heard: str, dialect: str | None, mandarin: str
) -> None:
    assert normalize_dialect(heard, dialect) == mandarin


@pytest.mark.parametrize(
    "mandarin", ["无事了就好", "某个时间点", "某个客户需要", "农业公司", "农讲所", "无系统"]
)
def test_recognizer_spellings_need_the_dialect(mandarin: str) -> None:
    """The ear's spellings that are Mandarin words too are left alone for an unknown caller, and
    a Mandarin word around them is protected for any caller."""
    assert normalize_dialect(mandarin) == mandarin
    assert normalize_dialect("无系统", "yue") == "无系统"  # 系统 is protected


def test_recognizer_spellings_are_not_dialect_variants() -> None:
    assert all("无该" not in words for *_, words in dialect_variants("谢谢你", "yue"))
    assert "农" not in to_dialect("谢谢你，你说", "wu", rng=random.Random(0), probability=1.0)
