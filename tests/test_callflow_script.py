"""Script validation: bad scripts fail with a message naming the file and the place."""

from __future__ import annotations

from pathlib import Path

import pytest

from callflow.script import ScriptError, load_script, parse_script
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
            {"states": {"a": {"say": "x", "end": "qualified", "grade": "D"}, "z": {"say": "y"}}},
            "states.a.grade 'D' is not one of ['A', 'B', 'C']",
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
