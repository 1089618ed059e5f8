"""What the NLU does with more of what the recognizer knows: the n-best (``context
["alternatives"]``), the state's expected intents (``context["expected"]``) and the top-2 margin."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pytest

from nlu.base import IntentResult
from nlu.postprocess import decide, decide_batch, hypotheses, state_prior, top_margin

CLASSES: tuple[str, ...] = (
    "affirm",
    "ask_price",
    "price_objection",
    "complaint_dnc",
    "request_human",
    "other",
)


class TableModel:
    """Probabilities looked up by normalized text; counts the batched calls."""

    classes: tuple[str, ...] = CLASSES
    min_confidence = 0.35

    def __init__(self, table: Mapping[str, Sequence[float]]) -> None:
        self.table = {k: np.asarray(v, dtype=float) / sum(v) for k, v in table.items()}
        self.batches: list[list[str]] = []

    def probabilities(self, normalized: str) -> np.ndarray:
        return self.table.get(normalized, np.full(len(CLASSES), 1 / len(CLASSES)))

    def probabilities_batch(self, normalized: Sequence[str]) -> np.ndarray:
        self.batches.append(list(normalized))
        return np.stack([self.probabilities(n) for n in normalized])


MODEL = {
    "加格太高了": [0.30, 0.10, 0.25, 0.0, 0.0, 0.35],  # the 1-best: a garbled price objection
    "价格太高了": [0.02, 0.08, 0.85, 0.0, 0.0, 0.05],  # the 2nd hypothesis: clear
    "好的": [0.90, 0.02, 0.02, 0.0, 0.0, 0.06],
    "多少钱": [0.05, 0.45, 0.40, 0.0, 0.0, 0.10],  # a near tie
    "你们怎么回事": [0.05, 0.05, 0.05, 0.40, 0.40, 0.05],
}


def test_the_nbest_is_combined_weighted_by_posteriors_in_one_batch() -> None:
    model = TableModel(MODEL)
    alone = decide("加格太高了", model)
    assert alone.intent == "other" and alone.confidence == pytest.approx(0.35, abs=1e-3)
    ctx = {"alternatives": (("加格太高了", -2.0), ("价格太高了", -2.3))}
    combined = decide("加格太高了", model, ctx)
    assert combined.intent == "price_objection"
    w = np.exp([-2.0, -2.3]) / np.exp([-2.0, -2.3]).sum()
    assert combined.confidence == pytest.approx(w[0] * 0.25 + w[1] * 0.85, abs=1e-3)
    assert model.batches == [["加格太高了", "价格太高了"]]


def test_a_hypothesis_far_less_likely_barely_moves_the_result() -> None:
    model = TableModel(MODEL)
    ctx = {"alternatives": (("好的", -0.5), ("价格太高了", -9.0))}
    assert decide("好的", model, ctx).intent == "affirm"


@pytest.mark.parametrize(
    "alts",
    [
        None,
        (),
        (("好的", -1.0),),  # a 1-best alone
        (("别的话", -1.0), ("价格太高了", -1.2)),  # an n-best of another utterance
        (("好的", "not a number"), ("价格太高了", -1.0)),  # malformed: ignored, never raises
    ],
)
def test_alternatives_that_do_not_apply_are_ignored(alts: object) -> None:
    model = TableModel(MODEL)
    assert decide("好的", model, {"alternatives": alts}).intent == "affirm"
    assert model.batches == []


def test_rules_still_read_the_one_best() -> None:
    ctx = {"alternatives": (("别再打了", -1.0), ("价格太高了", -0.1))}
    result = decide("别再打了", TableModel(MODEL), ctx)
    assert result.intent == "complaint_dnc" and result.margin == 1.0


def test_hypotheses_caps_the_list() -> None:
    ctx = {"alternatives": tuple((f"h{i}", -float(i)) for i in range(8))}
    assert len(hypotheses("h0", ctx)) == 4


def test_the_state_prior_settles_a_near_tie_toward_what_the_state_expects() -> None:
    model = TableModel(MODEL)
    assert decide("多少钱", model).intent == "ask_price"
    expected = decide("多少钱", model, {"expected": ["price_objection", "affirm"]})
    assert expected.intent == "price_objection"  # 0.40 x 1.5 beats 0.45
    assert expected.margin is not None and expected.margin > 0
    # strong evidence for an unexpected intent still wins
    assert decide("好的", model, {"expected": ["price_objection"]}).intent == "affirm"


def test_the_prior_is_soft_and_never_suppresses_opt_outs_or_a_human() -> None:
    p = np.array([0.1, 0.1, 0.1, 0.3, 0.3, 0.1])
    q = state_prior(p, CLASSES, {"expected": ["affirm"]})
    assert q.sum() == pytest.approx(1.0)
    assert q[3] == pytest.approx(q[4]) and q[3] > q[0]  # dnc and human keep their lead
    assert state_prior(p, CLASSES, {"expected": []}) is p
    assert state_prior(p, CLASSES, {"expected": "affirm"}) is p  # a bare string is no list
    result = decide("你们怎么回事", TableModel(MODEL), {"expected": ["affirm", "ask_price"]})
    assert result.intent in ("complaint_dnc", "request_human")


def test_margin_is_top1_minus_top2_of_the_final_distribution() -> None:
    model = TableModel(MODEL)
    result = decide("好的", model)
    assert result.margin == pytest.approx(0.90 - 0.06, abs=1e-3)
    assert decide("加格太高了", model).margin == pytest.approx(0.35 - 0.30, abs=1e-3)
    assert top_margin(np.array([0.5, 0.5])) == 0.0
    assert decide("", model).margin is None  # nothing to classify: no distribution
    assert [r.margin is not None for r in decide_batch(["好的", "多少钱"], model)] == [True, True]


def test_intent_result_margin_defaults_to_none() -> None:
    assert IntentResult("affirm", 0.9).margin is None


def test_hypotheses_the_model_reads_alike_are_scored_once_with_their_weights_summed() -> None:
    model = TableModel(MODEL)
    # Whisper's beam often differs only in punctuation: one model text, one model pass
    ctx = {"alternatives": (("好的。", -1.0), ("好的", -1.2), ("价格太高了", -1.5))}
    result = decide("好的。", model, ctx)
    assert model.batches == [["好的", "价格太高了"]]
    w = np.exp([-1.0, -1.2, -1.5]) / np.exp([-1.0, -1.2, -1.5]).sum()
    expected = (w[0] + w[1]) * 0.90 + w[2] * 0.02
    assert result.confidence == pytest.approx(expected, abs=1e-3)


def test_an_nbest_of_one_model_text_is_one_plain_pass() -> None:
    model = TableModel(MODEL)
    ctx = {"alternatives": (("价格太高了！", -0.4), ("价格太高了", -0.9))}
    result = decide("价格太高了！", model, ctx)
    assert model.batches == []  # no batch: the single text went through probabilities()
    assert result.intent == "price_objection"
    assert result.confidence == pytest.approx(0.85, abs=1e-3)
