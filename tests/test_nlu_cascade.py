"""The ensemble's cascade (``nlu.ensemble``): the student runs only where the linear model alone
is not decisive, and the answers agree with the full ensemble's."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from nlu.ensemble import EnsembleIntentClassifier, decisive_rows
from nlu.prepare import raw_model_text

# Replies written for this test (sales-call phrasing, clear and vague ones).
FIXTURE = (
    "好的",
    "可以可以",
    "多少钱",
    "你们这个价格是多少",
    "太贵了",
    "不需要谢谢",
    "我现在在开会你晚点再打",
    "你是哪家公司的",
    "我们已经有了",
    "别再给我打电话了",
    "给我转人工",
    "你刚才说什么我没听清",
    "你打错了",
    "我再考虑考虑吧",
    "把资料发我邮箱",
    "能不能便宜一点",
    "那个嗯怎么说呢",
    "具体是做什么的",
    "约个时间见面聊吧",
    "喂喂",
)


class CountingStudent:
    """Wraps the real student and records which texts it was asked about."""

    def __init__(self, student: Any) -> None:
        self.inner = student
        self.classes = student.classes
        self.seen: list[str] = []

    def probabilities_batch(self, normalized: Sequence[str]) -> np.ndarray:
        self.seen.extend(normalized)
        return np.asarray(self.inner.probabilities_batch(normalized))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture(scope="module")
def deployed() -> EnsembleIntentClassifier:
    from nlu import load_classifier

    model = load_classifier()
    assert isinstance(model, EnsembleIntentClassifier)
    return model


def variant(base: EnsembleIntentClassifier, tau: float | None) -> EnsembleIntentClassifier:
    return EnsembleIntentClassifier(
        CountingStudent(base.student),  # type: ignore[arg-type]
        base.linear,
        linear_weight=base.linear_weight,
        cache_size=0,
        cascade_tau=tau,
        cascade_margin=base.cascade_margin,
    )


def test_decisive_rows_need_both_top_probability_and_margin() -> None:
    rows = np.array([[0.95, 0.03, 0.02], [0.6, 0.35, 0.05], [0.5, 0.5, 0.0], [0.9, 0.1, 0.0]])
    assert decisive_rows(rows, 0.9, 0.15).tolist() == [True, False, False, True]
    assert decisive_rows(rows, 0.55, 0.3).tolist() == [True, False, False, True]
    assert decisive_rows(rows, 0.55, 0.2).tolist() == [True, True, False, True]


def test_the_deployed_model_cascades(deployed: EnsembleIntentClassifier) -> None:
    assert deployed.cascade_tau is not None and deployed.cascade_tau >= 0.6


def test_student_skipped_only_on_decisive_inputs(deployed: EnsembleIntentClassifier) -> None:
    model = variant(deployed, deployed.cascade_tau)
    texts = [raw_model_text(t) for t in FIXTURE]
    rows = model.probabilities_batch(texts)
    order = [deployed.linear.classes.index(c) for c in deployed.classes]
    linear = np.stack([deployed.linear.probabilities(t)[order] for t in texts])
    assert deployed.cascade_tau is not None
    decisive = decisive_rows(linear, deployed.cascade_tau, deployed.cascade_margin)
    seen = model.student.seen  # type: ignore[attr-defined]
    assert sorted(seen) == sorted(t for t, d in zip(texts, decisive, strict=True) if not d)
    assert 0 < model.skipped < len(texts) and model.skipped + model.scored == len(texts)
    assert np.allclose(rows[decisive], linear[decisive])  # a skipped row is the linear row
    assert (rows[decisive].max(axis=1) >= deployed.cascade_tau).all()


def test_cascade_agrees_with_the_full_ensemble(deployed: EnsembleIntentClassifier) -> None:
    cascade, full = variant(deployed, deployed.cascade_tau), variant(deployed, None)
    ctx = {"timezone": "Asia/Shanghai"}
    for text in FIXTURE:
        a, b = cascade.classify(text, ctx), full.classify(text, ctx)
        assert a.intent == b.intent, text
    undecided = [t for t in FIXTURE if raw_model_text(t) in cascade.student.seen]  # type: ignore[attr-defined]
    for text in undecided:  # the student ran: the same row as the full ensemble's
        assert cascade.classify(text).confidence == full.classify(text).confidence


def test_the_knob_turns_it_off(deployed: EnsembleIntentClassifier) -> None:
    from nlu import load_classifier

    off = variant(deployed, None)
    texts = [raw_model_text(t) for t in FIXTURE]
    off.probabilities_batch(texts)
    assert off.skipped == 0 and len(off.student.seen) == len(texts)  # type: ignore[attr-defined]
    loaded = load_classifier(cascade_tau=None)
    assert isinstance(loaded, EnsembleIntentClassifier) and loaded.cascade_tau is None


def test_config_knob_reaches_the_model() -> None:
    from app.config import Config
    from app.engines import make_nlu

    cfg = Config()
    cfg.nlu.cascade_tau = 0.0
    model = make_nlu(cfg)
    assert isinstance(model, EnsembleIntentClassifier) and model.cascade_tau is None
    cfg.nlu.cascade_tau, cfg.nlu.cascade_margin = 0.97, 0.5
    model = make_nlu(cfg)
    assert isinstance(model, EnsembleIntentClassifier)
    assert (model.cascade_tau, model.cascade_margin) == (0.97, 0.5)


def test_bad_thresholds_are_refused(deployed: EnsembleIntentClassifier) -> None:
    with pytest.raises(ValueError):
        variant(deployed, 1.5)
    with pytest.raises(ValueError):
        EnsembleIntentClassifier(
            deployed.student, deployed.linear, cascade_tau=0.9, cascade_margin=-1
        )


def test_threshold_choice_keeps_agreement_on_dev() -> None:
    from nlu.training.cascade import Scored, choose, evaluate

    # three classes; rows 0-1: the linear model sure and right; row 2: sure (0.92) but the
    # student disagrees strongly; row 3: unsure
    linear = np.array([[0.97, 0.02, 0.01], [0.01, 0.98, 0.01], [0.92, 0.04, 0.04], [0.5, 0.4, 0.1]])
    student = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.0, 0.0, 1.0], [0.2, 0.7, 0.1]])
    dev = Scored(gold=np.array([0, 1, 2, 1]), linear=linear, student=student)
    loose = evaluate(dev, 0.9, 0.15)
    assert loose["skip"] == 0.75 and loose["intent_agreement"] == 0.75
    strict = evaluate(dev, 0.95, 0.15)
    assert strict["skip"] == 0.5 and strict["intent_agreement"] == 1.0
    _, best = choose({"dev": dev}, min_agreement=0.99, max_loss=0.0)
    assert best is not None and best["tau"] == 0.95 and best["dev"]["skip"] == 0.5
