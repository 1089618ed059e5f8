"""Grading rules: declared in the script, checked at load, evaluated when the outcome is known."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from callflow.grading import grade, parse_grading
from callflow.machine import Answered, DialogState, Finish, PlaybackFinished, UserSaid, step
from callflow.memory import known_name
from callflow.script import Script, ScriptError
from callflow.script_parse import load_script, parse_script
from core.vocab import Grade
from nlu.base import INTENTS

RULES = [
    {"grade": "A", "when": "intent.book_meeting and slot.decision_maker"},
    {"grade": "B", "when": "outcome == 'qualified' and slot.budget >= 10000"},
    {"grade": "C", "when": "outcome == 'qualified' or score.interest_max > 0.7"},
    {"grade": "D", "when": "true"},
]
BASE: dict[str, Any] = {
    "name": "grading_test",
    "start": "greeting",
    "give_up": "end_no",
    "grading": RULES,
    "states": {
        "greeting": {
            "say": "您好，我是AI助理，给您约个演示可以吗？",
            "on": {"affirm": "end_yes", "book_meeting": "end_yes", "deny": "end_no"},
        },
        "end_yes": {"say": "好的，再见。", "end": "qualified", "grade": "B"},
        "end_no": {"say": "打扰了，再见。", "end": "not_interested"},
    },
}


def check(name: str) -> str | None:
    return known_name(name, intents=set(INTENTS), slots={"budget", "decision_maker"})


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"intent.book_meeting": 1, "slot.decision_maker": True}, Grade.A),
        ({"intent.book_meeting": 1, "slot.decision_maker": False, "outcome": "qualified"}, Grade.C),
        ({"outcome": "qualified", "slot.budget": 20000.0}, Grade.B),
        ({"outcome": "qualified", "slot.budget": 5000.0}, Grade.C),
        ({"outcome": "not_interested", "score.interest_max": 0.8}, Grade.C),
        ({"outcome": "not_interested", "score.interest_max": 0.2}, Grade.D),
        ({}, Grade.D),
    ],
)
def test_the_first_rule_that_holds_gives_the_grade(env: dict[str, Any], expected: Grade) -> None:
    assert grade(parse_grading(RULES, check), env) is expected


def test_no_rule_holding_gives_no_grade() -> None:
    rules = parse_grading([{"grade": "A", "when": "slot.budget > 1"}], check)
    assert grade(rules, {}) is None and grade((), {"slot.budget": 5}) is None


def run(script: Script, *turns: UserSaid) -> Finish:
    state, _ = step(script, DialogState(), Answered())
    actions: Sequence[object] = []
    for turn in turns:
        state, _ = step(script, state, PlaybackFinished(state.speaking or 0))
        state, actions = step(script, state, turn)
    return next(a for a in actions if isinstance(a, Finish))


@pytest.fixture(scope="module")
def script() -> Script:
    return parse_script(BASE, source="grading.yaml", known_intents=INTENTS)


def test_the_machine_grades_at_the_end(script: Script) -> None:
    boss = UserSaid("book_meeting", 0.95, "", {"decision_maker": True})
    assert run(script, boss).grade is Grade.A
    rich = UserSaid("affirm", 0.95, "", {"amount": {"value": 20000.0, "text": "两万"}})
    assert run(script, rich).grade is Grade.B
    plain = UserSaid("affirm", 0.95, "", {"amount": {"value": 2000.0, "text": "两千"}})
    assert run(script, plain).grade is Grade.C
    no = UserSaid("deny", 0.95, "", {"sentiment": {"interest": 0.1}})
    assert run(script, no).grade is Grade.D


def test_without_rules_the_state_grade_stays() -> None:
    data = {k: v for k, v in BASE.items() if k != "grading"}
    plain = parse_script(data, source="grading.yaml", known_intents=INTENTS)
    assert run(plain, UserSaid("affirm", 0.95)).grade is Grade.B
    assert run(plain, UserSaid("deny", 0.95)).grade is None


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ([{"grade": "E", "when": "true"}], r"grading\[0\].grade 'E' is not one of"),
        ([{"grade": "A", "when": "intent.buy_now"}], "unknown intent 'buy_now'"),
        ([{"grade": "A", "when": "slot.budgte > 1"}], "unknown slot 'budgte'"),
        ([{"grade": "A", "when": "score.happiness > 1"}], "unknown score 'happiness'"),
        ([{"grade": "A", "when": "slot.budget >"}], r"grading\[0\].when"),
        ([{"grade": "A"}], r"grading\[0\] must be exactly"),
        ({"grade": "A"}, "grading must be a list"),
    ],
)
def test_bad_rules_are_script_errors(rules: Any, message: str) -> None:
    with pytest.raises(ScriptError, match=message):
        parse_script({**BASE, "grading": rules}, source="grading.yaml", known_intents=INTENTS)


def test_the_demo_script_grades_by_its_rules() -> None:
    demo = load_script("callflow/scripts/saas_demo.yaml", known_intents=INTENTS)
    assert demo.grading and demo.grading[-1].grade is Grade.D
    boss = UserSaid("book_meeting", 0.95, "", {"decision_maker": True})
    assert run(demo, boss).grade is Grade.A
