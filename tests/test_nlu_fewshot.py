"""Few-shot custom intents on the linear model's features (the student's are in
test_nlu_student.py): built in well under a second, rules still win, unknown text falls through."""

from __future__ import annotations

import time

import pytest

from nlu import with_custom_intents
from nlu.linear import LinearIntentClassifier
from nlu.training.dataset import build_split, find_data_path

CUSTOM = {
    "ask_invoice": [
        "能开发票吗",
        "可以开专票吗",
        "发票怎么开",
        "你们开不开发票",
        "能不能开增值税发票",
        "有发票吗",
        "开票吗",
        "发票能开吗",
        "可以开普票吗",
        "开个发票行不行",
    ],
    "ask_contract_term": [
        "合同签几年",
        "最短签多久",
        "可以按月付吗",
        "合同期多长",
        "能不能只签一年",
        "签约期限是多久",
        "一年一签吗",
        "合同能提前解约吗",
        "最少要签几年",
        "可以签半年吗",
    ],
}


@pytest.fixture(scope="module")
def linear() -> LinearIntentClassifier:
    try:
        find_data_path()
    except FileNotFoundError as exc:
        pytest.skip(f"intent dataset not available: {exc}")
    from nlu.training.train import TrainConfig, fit

    return fit(build_split().train[::2], TrainConfig())


def test_custom_intents_on_linear_features(linear: LinearIntentClassifier) -> None:
    start = time.perf_counter()
    clf = with_custom_intents(linear, CUSTOM)
    assert time.perf_counter() - start < 5.0
    assert clf.classify("你们能开发票不").intent == "ask_invoice"
    assert clf.classify("合同最少签几年啊").intent == "ask_contract_term"
    result = clf.classify("发票", {"timezone": "Asia/Shanghai"})
    assert result.intent == "ask_invoice" and "base_intent" in result.slots
    assert 0.0 <= result.confidence <= 1.0
    # built-in intents and the rule layer are untouched
    assert clf.classify("多少钱").intent == "ask_price"
    assert clf.classify("别再打了，发票也不要").intent == "complaint_dnc"
    assert clf.classify("").intent == "other"


def test_custom_intents_validate_their_input(linear: LinearIntentClassifier) -> None:
    with pytest.raises(ValueError, match="shadows"):
        with_custom_intents(linear, {"deny": ["不要", "不用", "算了"]})
    with pytest.raises(ValueError, match="at least"):
        with_custom_intents(linear, {"x": ["发票"]})
    with pytest.raises(ValueError, match="no custom"):
        with_custom_intents(linear, {})


def test_linear_training_never_overwrites_the_student(tmp_path) -> None:
    import io
    import json

    from nlu.cli import train_main

    (tmp_path / "manifest.json").write_text(json.dumps({"engine": "encoder"}), encoding="utf-8")
    out = io.StringIO()
    assert train_main(tmp_path, out_stream=out) == 2
    assert (
        json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))["engine"] == "encoder"
    )
