"""Poorly heard transcripts (``nlu.ensemble``'s ``linear_only_below``): a transcript the
recognizer heard with low confidence is read by the phone-trained linear model alone; a well
heard one, or one with no confidence, by the ensemble."""

from __future__ import annotations

from typing import Any

import pytest

from nlu.ensemble import EnsembleIntentClassifier, LinearView
from nlu.postprocess import heard_model
from tests.test_nlu_cascade import CountingStudent

# What Whisper base heard of espeak renders of training sentences (written for this test in the
# style of nlu/data/ear_transcripts.jsonl), and clear replies.
GARBLED = ("傲哥，你别走，我人家，我", "加格上我们没法接受", "债演工", "你放我油香吧")
CLEAR = ("好的", "多少钱", "你们是哪家公司的", "我现在在开会你晚点再打")


@pytest.fixture(scope="module")
def deployed() -> EnsembleIntentClassifier:
    from nlu import load_classifier

    model = load_classifier(cascade_tau=None)
    assert isinstance(model, EnsembleIntentClassifier)
    return model


def gated(
    model: EnsembleIntentClassifier, below: float | None
) -> tuple[EnsembleIntentClassifier, CountingStudent]:
    """The deployed pair with `below`, and the student's record of what it read."""
    student = CountingStudent(model.student)
    gate = EnsembleIntentClassifier(
        student,  # type: ignore[arg-type]
        model.linear,
        linear_weight=model.linear_weight,
        cache_size=0,
        linear_only_below=below,
    )
    return gate, student


def test_a_poorly_heard_transcript_is_read_by_the_linear_model_alone(deployed: Any) -> None:
    model, student = gated(deployed, 0.5)
    for text in GARBLED:
        result = model.classify(text, {"asr_confidence": 0.3})
        alone = deployed.linear.classify(text)
        assert (result.intent, result.confidence) == (alone.intent, alone.confidence)
    assert student.seen == []  # the student's pass was skipped


@pytest.mark.parametrize("context", [{"asr_confidence": 0.8}, {}, {"asr_confidence": None}])
def test_a_well_heard_or_unscored_transcript_gets_the_ensemble(
    deployed: Any, context: dict[str, Any]
) -> None:
    model, student = gated(deployed, 0.5)
    for text in CLEAR:
        got = model.classify(text, context)
        want = deployed.classify(text, context)
        assert (got.intent, got.confidence) == (want.intent, want.confidence)
    assert len(student.seen) == len(CLEAR)


def test_off_by_default_and_at_zero(deployed: Any) -> None:
    for below in (None, 0.0):
        model, student = gated(deployed, below)
        model.classify(GARBLED[0], {"asr_confidence": 0.01})
        assert student.seen, below


@pytest.mark.parametrize("raw", ["high", float("nan"), True, [0.2]])
def test_a_malformed_confidence_is_ignored(deployed: Any, raw: Any) -> None:
    model, _ = gated(deployed, 0.5)
    assert heard_model(model, {"asr_confidence": raw}) is model


def test_the_batch_path_and_the_nbest_follow_the_same_choice(deployed: Any) -> None:
    model, student = gated(deployed, 0.5)
    ctx = {"asr_confidence": 0.2}
    batch = model.classify_batch(list(GARBLED), ctx)
    one = [model.classify(t, ctx) for t in GARBLED]
    assert [(r.intent, r.confidence) for r in batch] == [(r.intent, r.confidence) for r in one]
    nbest = {**ctx, "alternatives": (("加格上我们没法接受", -1.0), ("价格上我们没法接受", -1.4))}
    model.classify("加格上我们没法接受", nbest)
    assert student.seen == []


def test_the_view_keeps_the_ensembles_class_order(deployed: Any) -> None:
    view = deployed.heard_poorly
    assert isinstance(view, LinearView)
    assert view.classes == deployed.classes
    row = view.probabilities("太贵了")
    assert view.classes[int(row.argmax())] == deployed.linear.classify("太贵了").intent
    assert row.sum() == pytest.approx(1.0, abs=1e-5)
    assert view.probabilities_batch([]).shape == (0, len(view.classes))


def test_the_threshold_and_the_heard_models_intents_are_checked(deployed: Any) -> None:
    with pytest.raises(ValueError, match="linear_only_below"):
        gated(deployed, 1.5)

    class Partial:
        classes = ("affirm", "deny")

    with pytest.raises(ValueError, match="lacks intents"):
        EnsembleIntentClassifier(deployed.student, deployed.linear, heard_linear=Partial())  # type: ignore[arg-type]


def test_the_configured_node_model_reads_poorly_heard_text_alone() -> None:
    from app.config import load_config
    from app.engines import make_nlu

    model = make_nlu(load_config(None))
    assert isinstance(model, EnsembleIntentClassifier)
    assert model.linear_only_below == pytest.approx(0.5)
    assert heard_model(model, {"asr_confidence": 0.2}) is model.heard_poorly
    assert heard_model(model, {"asr_confidence": 0.9}) is model


@pytest.mark.parametrize(
    "text", ["", "   ", "Hello, not interested", "😀😀", "喂" * 500, "1234567890", "？？？"]
)
def test_bad_text_heard_poorly_gives_a_defined_result(deployed: Any, text: str) -> None:
    from nlu.base import INTENTS

    model, _ = gated(deployed, 0.5)
    result = model.classify(text, {"asr_confidence": 0.1})
    assert result.intent in INTENTS and 0.0 <= result.confidence <= 1.0
