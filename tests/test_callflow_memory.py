"""Memory and conditions: the ``when:`` language, slots across turns, skipping what was said,
branching on slots, intents and mood scores (table tests of the pure machine)."""

from __future__ import annotations

from typing import Any

import pytest

from callflow.machine import (
    Answered,
    DialogState,
    Finish,
    PlaybackFinished,
    Say,
    UserSaid,
    step,
)
from callflow.memory import environment, remember
from callflow.script import Script, ScriptError
from callflow.script_parse import parse_script
from callflow.when import WhenError, compile_when
from nlu.base import INTENTS
from nlu.entities import decision_maker, entity_slots, team_size

ENV: dict[str, Any] = {
    "slot.budget": 20000,
    "slot.wechat": "wx_abc123",
    "slot.decision_maker": False,
    "intent.ask_price": 2,
    "intent.book_meeting": 0,
    "score.hesitation": 0.62,
    "lead.city": "杭州",
    "turns": 3,
    "outcome": "qualified",
}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("slot.budget", True),  # present and non-zero
        ("slot.team_size", False),  # missing
        ("not slot.team_size", True),
        ("slot.decision_maker", False),  # said: no
        ("not slot.decision_maker", True),
        ("slot.budget > 5000", True),
        ("slot.budget >= 20000", True),
        ("slot.budget < 20000", False),
        ("slot.budget <= 20000.0", True),
        ("slot.team_size > 5", False),  # a missing value never compares true
        ("slot.team_size < 5", False),
        ("intent.ask_price", True),
        ("intent.ask_price >= 2", True),
        ("intent.book_meeting", False),  # 0 times
        ("intent.hesitate", False),  # never heard
        ("score.hesitation > 0.5", True),
        ("score.hesitation > 0.7", False),
        ("lead.city == '杭州'", True),
        ('lead.city != "杭州"', False),
        ("lead.city == 3", False),
        ("lead.city < 3", False),  # different kinds never compare true
        ("outcome == 'qualified'", True),
        ("turns == 3", True),
        ("true", True),
        ("false", False),
        ("slot.budget and slot.wechat", True),
        ("slot.budget and slot.team_size", False),
        ("slot.team_size or slot.wechat", True),
        ("not (slot.team_size or slot.budget)", False),
        ("not slot.team_size and score.hesitation > 0.5", True),
        ("slot.team_size or intent.book_meeting or false", False),
        ("(slot.budget > 30000 or intent.ask_price > 1) and not intent.book_meeting", True),
    ],
)
def test_every_when_form(expr: str, expected: bool) -> None:
    assert compile_when(expr).holds(ENV) is expected


@pytest.mark.parametrize(
    "expr",
    ["", "slot.budget >", "and slot.x", "(slot.x", "slot.x ==== 1", "slot.x; import os",
     "__import__('os')", "slot.x + 1", "slot.x 1"],
)  # fmt: skip
def test_bad_conditions_are_refused(expr: str) -> None:
    with pytest.raises(WhenError):
        compile_when(expr)


def test_names_are_checked_at_compile_time() -> None:
    with pytest.raises(WhenError, match="unknown slot 'budgte'"):
        compile_when(
            "slot.budgte > 1", lambda n: "unknown slot 'budgte'" if "budgte" in n else None
        )


def test_memory_keeps_slots_across_turns_and_not_the_per_turn_scores() -> None:
    mood = {"interest": 0.1, "hesitation": 0.8, "annoyance": 0.0}
    m = remember({}, {"team_size": 20, "sentiment": mood}, "affirm")
    m = remember(m, {"amount": {"value": 5000.0, "text": "五千"}, "products": ["crm"]}, "hesitate")
    m = remember(m, {"products": ["erp", "crm"]}, "price_objection")
    assert m["team_size"] == 20 and m["budget"]["value"] == 5000.0
    assert m["product_interest"] == ["crm", "erp"]
    assert m["objections"] == ["hesitate", "price_objection"]
    assert "sentiment" not in m
    env = environment(slots=m, heard={}, scores=(mood,), lead={}, turns=1)
    assert env["slot.budget"] == 5000.0 and env["score.hesitation"] == 0.8


def test_team_size_and_decision_maker_are_extracted() -> None:
    assert team_size("我们公司有二十来个人") == 20
    assert team_size("团队一共三十个销售") == 30
    assert team_size("明天三点") is None
    assert decision_maker("我是老板") is True and decision_maker("我说了算") is True
    assert decision_maker("这个要问老板") is False and decision_maker("我做不了主") is False
    assert decision_maker("好的") is None
    assert entity_slots("我们有50人，我说了算") == {"team_size": 50, "decision_maker": True}


QUALIFY: dict[str, Any] = {
    "name": "memory_test",
    "start": "greeting",
    "give_up": "end_sorry",
    "states": {
        "greeting": {
            "say": "您好，我是AI助理。方便聊两句吗？",
            "on": {"affirm": "ask_team"},
            "default": "ask_team",
        },
        "ask_team": {
            "say": "您团队大概多少人？",
            "skip_if": "slot.team_size",
            "skip_to": "ask_budget",
            "default": "ask_budget",
        },
        "ask_budget": {
            "say": "预算大概多少？",
            "skip_if": "slot.budget",
            "default": "offer",
        },
        "offer": {
            "say": "我们给您安排演示可以吗？",
            "on": {
                "affirm": [
                    {"when": "slot.decision_maker", "goto": "end_ok"},
                    {"goto": "ask_boss"},
                ],
                "hesitate": [
                    {"when": "score.hesitation > 0.5", "say": "现在签约有八折优惠。"},
                    {"goto": "end_later"},
                ],
                "deny": [{"when": "score.annoyance > 0.6", "goto": "end_sorry"}],
            },
        },
        "ask_boss": {"say": "需要和负责人一起看吗？", "default": "end_ok"},
        "end_ok": {"say": "好的，再见。", "end": "qualified"},
        "end_later": {"say": "好的，改天联系。", "end": "callback"},
        "end_sorry": {"say": "抱歉打扰了，再见。", "end": "not_interested"},
    },
}


@pytest.fixture(scope="module")
def script() -> Script:
    return parse_script(QUALIFY, source="memory_test.yaml", known_intents=INTENTS)


def said(intent: str, **slots: Any) -> UserSaid:
    return UserSaid(intent, 0.95, "", dict(slots))


def talk(script: Script, turns: list[UserSaid]) -> tuple[DialogState, list[str]]:
    """Answer, then each turn after the robot's line ends; the robot's lines in order."""
    state, actions = step(script, DialogState(), Answered())
    lines = [a.text for a in actions if isinstance(a, Say)]
    for turn in turns:
        state, _ = step(script, state, PlaybackFinished(state.speaking or 0))
        state, actions = step(script, state, turn)
        lines += [a.text for a in actions if isinstance(a, Say)]
    return state, lines


def test_the_robot_never_asks_for_the_team_size_it_was_told(script: Script) -> None:
    state, lines = talk(script, [said("affirm", team_size=20)])
    assert "您团队大概多少人？" not in lines
    assert state.node == "ask_budget" and lines[-1] == "预算大概多少？"


def test_without_the_team_size_the_state_asks_for_it(script: Script) -> None:
    state, lines = talk(script, [said("affirm")])
    assert state.node == "ask_team" and lines[-1] == "您团队大概多少人？"


def test_skips_chain_when_everything_was_already_said(script: Script) -> None:
    budget = {"value": 30000.0, "min": 30000.0, "max": 30000.0, "approx": False, "text": "三万"}
    state, lines = talk(script, [said("affirm", team_size=20, amount=budget)])
    assert state.node == "offer" and lines[-1] == "我们给您安排演示可以吗？"
    assert state.slots["budget"]["value"] == 30000.0  # remembered under its memory name


def test_a_slot_heard_turns_ago_still_picks_the_branch(script: Script) -> None:
    state, _ = talk(script, [said("affirm", decision_maker=True), said("other"), said("other")])
    assert state.node == "offer"
    state, _ = step(script, state, PlaybackFinished(state.speaking or 0))
    state, actions = step(script, state, said("affirm"))
    assert state.node == "end_ok"
    finish = next(a for a in actions if isinstance(a, Finish))
    assert finish.slots["decision_maker"] is True


def test_no_decision_maker_takes_the_fallback_branch(script: Script) -> None:
    state, _ = talk(script, [said("affirm"), said("other"), said("other"), said("affirm")])
    assert state.node == "ask_boss"


def mood(hesitation: float = 0.0, annoyance: float = 0.0) -> dict[str, float]:
    return {"interest": 0.2, "hesitation": hesitation, "annoyance": annoyance}


def test_rising_hesitation_gets_the_discount_line(script: Script) -> None:
    turns = [said("affirm"), said("other"), said("other")]
    state, lines = talk(script, [*turns, said("hesitate", sentiment=mood(hesitation=0.8))])
    assert state.node == "offer" and lines[-1] == "现在签约有八折优惠。"
    state, _ = talk(script, [*turns, said("hesitate", sentiment=mood(hesitation=0.3))])
    assert state.node == "end_later"


def test_annoyance_wraps_up_politely_and_the_trajectory_is_kept(script: Script) -> None:
    turns = [said("affirm", sentiment=mood()), said("other"), said("other")]
    state, _ = talk(script, [*turns, said("deny", sentiment=mood(annoyance=0.9))])
    assert state.node == "end_sorry"
    assert [s["annoyance"] for s in state.scores] == [0.0, 0.9]
    calm, _ = talk(script, [*turns, said("deny", sentiment=mood(annoyance=0.2))])
    assert calm.node == "offer"  # no branch holds: unusable, asked again
    assert calm.retries == 1


def test_finish_carries_the_score_trajectory(script: Script) -> None:
    state, _ = talk(script, [said("affirm", sentiment=mood(0.1)), said("other")])
    state, _ = step(script, state, PlaybackFinished(state.speaking or 0))
    state, actions = step(script, state, said("other", sentiment=mood(0.4)))
    state, _ = step(script, state, PlaybackFinished(state.speaking or 0))
    state, actions = step(script, state, said("hesitate", sentiment=mood(0.2)))
    finish = next(a for a in actions if isinstance(a, Finish))
    assert [s["hesitation"] for s in finish.scores] == [0.1, 0.4, 0.2]


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"skip_if": "slot.team_sise"}, "unknown slot 'team_sise'"),
        ({"skip_if": "intent.buy_now"}, "unknown intent 'buy_now'"),
        ({"skip_if": "score.joy > 1"}, "unknown score 'joy'"),
        ({"skip_if": "mood > 1"}, "unknown name 'mood'"),
        ({"skip_if": "slot.team_size >"}, "states.ask_team.skip_if"),
        ({"skip_to": "nowhere"}, "skip_to names unknown state 'nowhere'"),
        ({"on": {"affirm": [{"when": "slot.x", "goto": "offer"}]}}, "unknown slot 'x'"),
        ({"on": {"affirm": [{"when": "true", "goto": "nowhere"}]}}, "unknown state 'nowhere'"),
        ({"on": {"affirm": []}}, "must not be empty"),
        ({"on": {"affirm": {"when": "true", "goto": "offer"}}}, "unknown handler keys"),
    ],
)
def test_bad_memory_scripts_name_the_problem(patch: dict[str, Any], message: str) -> None:
    data = {**QUALIFY, "states": {**QUALIFY["states"]}}
    data["states"]["ask_team"] = {**QUALIFY["states"]["ask_team"], **patch}
    with pytest.raises(ScriptError, match=message.replace("(", r"\(").replace("[", r"\[")):
        parse_script(data, source="memory_test.yaml", known_intents=INTENTS)


def test_a_script_may_declare_its_own_slots() -> None:
    data = {**QUALIFY, "slots": ["school_year"], "states": {**QUALIFY["states"]}}
    data["states"]["ask_team"] = {**QUALIFY["states"]["ask_team"], "skip_if": "slot.school_year"}
    parsed = parse_script(data, source="memory_test.yaml", known_intents=INTENTS)
    assert "school_year" in parsed.slots
