"""The clarification policy: act on clear replies, confirm weak ones, ask again on none."""

from __future__ import annotations

import pytest

from callflow.clarify import judge


@pytest.mark.parametrize(
    ("intent", "confidence", "margin", "decision"),
    [
        ("ask_price", 0.9, None, "act"),
        ("ask_price", 0.6, None, "act"),  # the threshold itself is enough
        ("ask_price", 0.9, 0.8, "act"),
        ("ask_price", 0.65, 0.1, "confirm"),  # confident-looking, but nearly tied
        ("ask_price", 0.59, None, "confirm"),
        ("ask_price", 0.3, None, "confirm"),  # weak but plausible
        ("ask_price", 0.29, None, "ask_again"),  # hardly any evidence
        ("other", 0.99, None, "ask_again"),  # nothing usable, however sure
        ("complaint_dnc", 0.99, None, "act"),
        ("complaint_dnc", 0.61, 0.0, "act"),  # an opt-out is never delayed by a tie
        ("request_human", 0.7, 0.05, "act"),
        ("complaint_dnc", 0.5, None, "confirm"),  # a weak one is asked about ...
        ("request_human", 0.1, None, "confirm"),  # ... never dropped
    ],
)
def test_default_policy(
    intent: str, confidence: float, margin: float | None, decision: str
) -> None:
    assert judge(intent, confidence, margin=margin) == decision


def test_thresholds_are_the_callers() -> None:
    assert judge("deny", 0.65, threshold=0.7) == "confirm"
    assert judge("deny", 0.65, margin=0.2, margin_threshold=0.3) == "confirm"
    assert judge("deny", 0.65, margin=0.2, margin_threshold=0.1) == "act"
    assert judge("deny", 0.3, threshold=0.9) == "ask_again"  # below half the threshold


def test_zero_threshold_turns_clarification_off() -> None:
    assert judge("ask_price", 0.01, margin=0.0, threshold=0.0) == "act"
    assert judge("other", 0.5, threshold=0.0) == "ask_again"
