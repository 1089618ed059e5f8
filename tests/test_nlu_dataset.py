"""Taxonomy mapping, data loading and the held-out split (no model training here)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from nlu.base import INTENTS
from nlu.prepare import raw_model_text
from nlu.training.dataset import (
    EXTRA_EXAMPLES,
    build_split,
    find_data_path,
    load_extra,
    load_labelled,
    split_heldout,
)
from nlu.training.taxonomy import LABEL_TO_INTENT


@pytest.fixture(scope="module")
def data_path():
    try:
        return find_data_path()
    except FileNotFoundError as exc:
        pytest.skip(f"intent dataset not available: {exc}")


def test_mapping_targets_are_intents() -> None:
    assert {v for v in LABEL_TO_INTENT.values() if v is not None} <= set(INTENTS)


def test_every_dataset_label_is_mapped_or_dropped(data_path) -> None:
    with data_path.open(encoding="utf-8") as fh:
        labels = {json.loads(line)["label"] for line in fh if line.strip()}
    assert len(labels) == 92
    assert labels - LABEL_TO_INTENT.keys() == set()
    assert LABEL_TO_INTENT.keys() - labels == set()  # no stale entries either


def test_extra_examples_are_valid_and_cover_weak_intents() -> None:
    extra = load_extra(EXTRA_EXAMPLES)
    per_intent = Counter(ex.intent for ex in extra)
    for intent in ("voicemail", "book_meeting", "already_have", "hesitate", "wrong_person"):
        assert per_intent[intent] >= 40, intent
    assert all(raw_model_text(ex.text) for ex in extra)
    texts = [(ex.text, ex.intent) for ex in extra]
    assert len(texts) == len(set(texts))


def test_split_is_deterministic_and_disjoint(data_path) -> None:
    first = build_split(data_path)
    second = build_split(data_path)
    assert first == second
    held = {raw_model_text(ex.text) for ex in first.heldout}
    trained = {raw_model_text(ex.text) for ex in first.train}
    assert held and trained
    assert held.isdisjoint(trained)


def test_heldout_is_real_stratified_and_seeded(data_path) -> None:
    real = load_labelled(data_path)
    split = build_split(data_path)
    assert all(ex.source == "data" for ex in split.heldout)
    assert {ex.text for ex in split.heldout} <= {ex.text for ex in real}
    assert 0.18 <= len(split.heldout) / len(real) <= 0.22
    held_counts = Counter(ex.intent for ex in split.heldout)
    real_counts = Counter(ex.intent for ex in real)
    for intent, n in real_counts.items():
        if n >= 20:
            assert 0.12 <= held_counts[intent] / n <= 0.28, intent
    other_seed = build_split(data_path, seed=1)
    assert {ex.text for ex in other_seed.heldout} != {ex.text for ex in split.heldout}


def test_split_groups_texts_that_normalize_alike() -> None:
    from nlu.training.dataset import Example

    rows = [Example(t, "affirm", "data") for t in ("好的", "好的。", "好的！", "好啊", "行")] + [
        Example(t, "deny", "data") for t in ("不要", "不要。", "不用", "算了", "没兴趣")
    ]
    train, held = split_heldout(rows, fraction=0.4, seed=3)
    assert {raw_model_text(e.text) for e in train}.isdisjoint(
        {raw_model_text(e.text) for e in held}
    )
    assert len(train) + len(held) == len(rows)
