"""Script validation: bad scripts fail with a message naming the file and the place."""

from __future__ import annotations

from pathlib import Path

import pytest

from callflow.script import ScriptError
from callflow.script_parse import load_script, parse_script
from core.vocab import Grade, Outcome
from nlu.base import INTENTS

BASE = {
    "name": "t",
    "start": "a",
    "give_up": "z",
    "states": {"a": {"say": "你好", "on": {"affirm": "z"}}, "z": {"say": "再见", "end": "dnc"}},
}


def parse(data: dict) -> object:
    return parse_script(data, source="t.yaml", known_intents=INTENTS)


def test_valid_script_parses() -> None:
    s = parse(BASE)
    assert s.states["a"].on["affirm"].goto == "z"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"start": "nope"}, "start names unknown state 'nope'"),
        (
            {"states": {"a": {"say": "x", "on": {"affirm": "gone"}}, "z": {"say": "y"}}},
            "goes to unknown state 'gone'",
        ),
        (
            {"states": {"a": {"say": "x", "on": {"not_an_intent": "z"}}, "z": {"say": "y"}}},
            "unknown intent 'not_an_intent'",
        ),
        ({"states": {"a": {"on": {}}, "z": {"say": "y"}}}, "states.a is missing 'say'"),
        ({"states": {"a": {"say": "x", "end": "won"}, "z": {"say": "y"}}}, "states.a.end 'won'"),
        (
            {"states": {"a": {"say": "x", "end": "qualified", "grade": "E"}, "z": {"say": "y"}}},
            "states.a.grade 'E' is not one of ['A', 'B', 'C', 'D']",
        ),
        ({"states": {"a": {"say": "{nope}"}, "z": {"say": "y"}}}, "undefined variable 'nope'"),
        (
            {
                "states": {
                    "a": {"say": "x", "on": {"affirm": {"goto": "z", "say": "q"}}},
                    "z": {"say": "y"},
                }
            },
            "exactly one of goto, say, repeat",
        ),
    ],
)
def test_bad_scripts_name_the_problem(patch: dict, message: str) -> None:
    with pytest.raises(ScriptError) as err:
        parse({**BASE, **patch})
    assert message in str(err.value)
    assert "t.yaml" in str(err.value)


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"confirm": {"not_an_intent": "是吗？"}}, "confirm.not_an_intent names unknown intent"),
        ({"confirm": {"other": "是吗？"}}, "confirm.other names unknown intent"),
        ({"confirm": {"ask_price": 3}}, "confirm.ask_price must be a string"),
        ({"confirm": {"ask_price": "  "}}, "confirm.ask_price must not be empty"),
        ({"confirm": ["ask_price"]}, "confirm must be a mapping"),
        ({"confirm": {"ask_price": "{nope}吗？"}}, "undefined variable 'nope'"),
        ({"clarify_below": "high"}, "clarify_below must be a number from 0 to 1"),
        ({"clarify_below": 1.5}, "clarify_below must be a number from 0 to 1"),
        ({"clarify_below": True}, "clarify_below must be a number from 0 to 1"),
    ],
)
def test_bad_clarification_settings_name_the_problem(patch: dict, message: str) -> None:
    with pytest.raises(ScriptError) as err:
        parse({**BASE, **patch})
    assert message in str(err.value) and "t.yaml" in str(err.value)


def test_clarification_settings_parse() -> None:
    s = parse(
        {
            **BASE,
            "vars": {"product": "客服"},
            "clarify_below": 0,
            "intents": {"ask_warranty": ["保修多久"]},
            "confirm": {"ask_price": "您是想了解{product}的价格吗？", "ask_warranty": "问保修吗？"},
        }
    )
    assert s.clarify_below == 0.0  # type: ignore[attr-defined]
    assert s.confirm["ask_price"] == "您是想了解客服的价格吗？"  # type: ignore[attr-defined]
    assert "问保修吗？" in s.lines()  # type: ignore[attr-defined]  # rendered with the rest
    assert parse(BASE).clarify_below == 0.6  # type: ignore[attr-defined]


def test_demo_script_confirms_its_intents_and_each_state_knows_its_replies() -> None:
    s = load_script("callflow/scripts/saas_demo.yaml", known_intents=INTENTS)
    handled = set(s.global_on) | {i for st in s.states.values() for i in st.on}
    questions = set(s.confirm)
    assert {"ask_price", "complaint_dnc", "affirm", "deny"} <= questions <= handled
    assert all(q.endswith("？") for q in s.confirm.values())
    expected = s.expected(s.states["price"])
    assert "price_objection" in expected and "complaint_dnc" in expected  # own + global
    assert "price_objection" not in s.expected(s.states["pitch"])


def test_script_own_intents_are_accepted() -> None:
    data = {
        **BASE,
        "intents": {"ask_warranty": ["保修多久"]},
        "states": {"a": {"say": "x", "on": {"ask_warranty": "z"}}, "z": {"say": "y"}},
    }
    assert parse(data).states["a"].on["ask_warranty"].goto == "z"  # type: ignore[attr-defined]


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ScriptError, match="not found"):
        load_script(tmp_path / "none.yaml", known_intents=INTENTS)
    bad = tmp_path / "bad.yaml"
    bad.write_text("states: [unclosed", encoding="utf-8")
    with pytest.raises(ScriptError, match="not valid YAML"):
        load_script(bad, known_intents=INTENTS)


def test_endings_speak_the_shared_vocabulary() -> None:
    a = {"say": "你好", "on": {"affirm": "z"}}
    data = {**BASE, "states": {"a": a, "z": {"say": "好", "end": "qualified", "grade": "B"}}}
    z = parse(data).states["z"]  # type: ignore[attr-defined]
    assert (z.end, z.grade) == (Outcome.QUALIFIED, Grade.B)
    assert isinstance(z.end, Outcome) and isinstance(z.grade, Grade)
    with pytest.raises(ScriptError) as err:
        parse({**BASE, "states": {"a": a, "z": {"say": "y", "end": "won"}}})
    assert all(o.value in str(err.value) for o in Outcome)  # the message lists every outcome
