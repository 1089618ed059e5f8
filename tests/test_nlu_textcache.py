"""The per-text row cache (``nlu.textcache``) and the ensemble that uses it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from nlu.textcache import RowCache


class Counting:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)


def test_known_texts_are_not_computed_again_and_misses_go_in_one_call() -> None:
    cache, compute = RowCache(8), Counting()
    first = cache.rows(["好的", "多少钱"], compute)
    again = cache.rows(["多少钱", "不需要", "好的", "不需要"], compute)
    assert compute.calls == [["好的", "多少钱"], ["不需要"]]
    assert again.tolist() == [[3, 1], [3, 1], [2, 1], [3, 1]]
    assert first[0].tolist() == again[2].tolist()
    assert (cache.hits, cache.misses) == (2, 4)


def test_rows_are_read_only_and_the_oldest_is_evicted() -> None:
    cache, compute = RowCache(2), Counting()
    row = cache.rows(["a"], compute)
    cache.rows(["b"], compute)
    cache.rows(["a"], compute)  # a is now the most recent
    cache.rows(["c"], compute)  # evicts b
    assert len(cache) == 2
    cache.rows(["a", "b"], compute)
    assert compute.calls[-1] == ["b"]
    stored = cache.rows(["a"], compute)[0]
    with pytest.raises(ValueError):
        np.asarray(cache._rows["a"])[0] = 9  # the stored row cannot be changed in place
    assert row[0].tolist() == stored.tolist()


def test_size_zero_turns_the_cache_off() -> None:
    cache, compute = RowCache(0), Counting()
    cache.rows(["a"], compute)
    cache.rows(["a"], compute)
    assert compute.calls == [["a"], ["a"]] and len(cache) == 0
    with pytest.raises(ValueError):
        RowCache(-1)


def test_the_ensemble_gives_the_same_rows_from_its_cache() -> None:
    from nlu import load_classifier
    from nlu.ensemble import EnsembleIntentClassifier

    model = load_classifier()
    assert isinstance(model, EnsembleIntentClassifier)
    model.cache.clear()
    texts = ["好的", "价格太高了", "我在开会明天再打"]
    cold = model.probabilities_batch(texts)
    warm = np.stack([model.probabilities(t) for t in texts])
    assert np.allclose(cold, warm, atol=1e-6)
    assert model.cache.hits >= 3
    assert model.classify("好的").intent == "affirm"
