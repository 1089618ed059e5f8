"""The state-prior measurement (``nlu.training.prior``) on a small hand-made dev set."""

from __future__ import annotations

import numpy as np

from nlu.training.cascade import Scored
from nlu.training.prior import SCRIPT, figures, labelled, state_expectations

CLASSES = ("affirm", "ask_price", "price_objection", "other")


def test_states_expect_their_handlers_and_the_global_ones() -> None:
    states = state_expectations(SCRIPT)
    assert {"greeting", "pitch", "price", "qualify"} <= set(states)
    assert "price_objection" in states["price"] and "price_objection" not in states["greeting"]
    assert all("complaint_dnc" in expected for expected in states.values())  # global
    assert not any("other" in expected for expected in states.values())


def test_price_replies_are_not_paired_with_the_first_state() -> None:
    states = {"greeting": frozenset({"affirm"}), "price": frozenset({"price_objection"})}
    dev = Scored(gold=np.array([0, 2]), linear=np.eye(4)[[0, 2]], student=np.eye(4)[[0, 2]])
    assert labelled(dev, CLASSES, states) == [
        (0, states["greeting"]),
        (0, states["price"]),
        (1, states["price"]),
    ]


def test_a_heavier_prior_turns_a_near_tie_toward_the_expected_intent() -> None:
    rows = np.array([[0.05, 0.50, 0.40, 0.05]])  # a price objection that reads like a question
    pairs = [(0, frozenset({"price_objection"}))]
    gold = np.array([2])
    assert figures(rows, gold, pairs, CLASSES, 1.0)["accuracy"] == 0.0
    assert figures(rows, gold, pairs, CLASSES, 1.5)["accuracy"] == 1.0
