"""`main.py chat`: the script simulator driven through stdin (the real intent model and
knowledge base), and the second real script (edu_upgrade) walked through the pure machine."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from app.chat import LeadSpecError, parse_lead
from callflow.machine import (
    Answered,
    DialogState,
    Finish,
    PlaybackFinished,
    Say,
    UserSaid,
    step,
)
from callflow.script import Script
from callflow.script_parse import load_script
from core.vocab import Grade, Outcome
from nlu.base import INTENTS

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "callflow" / "scripts"


def chat(script: str, lines: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "main.py", "chat", "--script", str(SCRIPTS / script), *args],
        cwd=ROOT,
        input=lines,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_chat_on_the_demo_script_shows_each_turn_and_the_outcome() -> None:
    run = chat("saas_demo.yaml", "多少钱\n好的，可以演示\n对\n")
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "robot: 您好，我是云启科技的智能助理小安" in out
    assert "callee: 多少钱\n  intent: ask_price (" in out
    assert "state: greeting -> price" in out
    assert "scores: {" in out and "slots: {" in out and "clarify: act ask_price" in out
    assert re.search(r"outcome: qualified  grade: [A-D]\n", out)  # the script's grading
    assert out.rstrip().endswith("action: Hangup {}")


def test_chat_on_the_edu_script_greets_by_surname_and_answers_from_knowledge() -> None:
    lines = "可以，你说说\n我是大专毕业的\n学费多少钱\n我要跟家里人商量一下\n"
    run = chat("edu_upgrade.yaml", lines, "--lead", "name=王伟,gender=男")
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "robot: 王先生好，我是启航教育的AI智能助理小航" in out
    assert "state: ask_education -> ask_major" in out
    assert '"entry": "tuition"' in out  # the knowledge file's answer
    assert "robot: 专升本学费一年三千二百元左右" in out
    assert "(input ended; the call would go on in state ask_time)" in out


def test_chat_without_a_lead_uses_the_neutral_form_and_stops_when_input_ends() -> None:
    run = chat("edu_upgrade.yaml", "")
    assert run.returncode == 0, run.stderr
    assert "robot: 您好，我是启航教育的AI智能助理小航" in run.stdout
    assert "the call would go on in state greeting" in run.stdout


def test_a_bad_lead_is_one_line_and_a_bad_script_a_config_error(tmp_path: Path) -> None:
    run = chat("edu_upgrade.yaml", "", "--lead", "王伟")
    assert run.returncode == 1 and "--lead: '王伟' is not FIELD=VALUE" in run.stdout
    bad = tmp_path / "x.yaml"
    bad.write_text("name: x\n")
    run = subprocess.run(
        [sys.executable, "main.py", "chat", "--script", str(bad)],
        cwd=ROOT,
        input="",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and "Traceback" not in run.stderr


def test_lead_specs(tmp_path: Path) -> None:
    assert parse_lead("name=王伟, gender=男") == {"name": "王伟", "gender": "男"}
    assert parse_lead('{"name": "李娜", "city": "杭州"}') == {"name": "李娜", "city": "杭州"}
    rows = tmp_path / "leads.csv"
    rows.write_text("phone,name,性别\n138,张三,男\n139,李四,女\n", encoding="utf-8")
    assert parse_lead(f"{rows}:2") == {"phone": "139", "name": "李四", "性别": "女"}
    assert parse_lead(str(rows))["name"] == "张三"
    with pytest.raises(LeadSpecError, match="no data row 5"):
        parse_lead(f"{rows}:5")
    with pytest.raises(LeadSpecError, match="JSON"):
        parse_lead("{nope")


# ---- the edu script, walked through the machine -----------------------------------------


@pytest.fixture(scope="module")
def edu() -> Script:
    return load_script(SCRIPTS / "edu_upgrade.yaml", known_intents=INTENTS)


def walk(script: Script, intents: list[str]) -> tuple[DialogState, list[str], Finish | None]:
    """Answer, then each intent heard clearly; every line plays to its end."""
    state, actions = step(script, DialogState(), Answered())
    nodes, finish = [state.node], None
    for intent in [None, *intents]:
        if intent is not None:
            state, actions = step(script, state, UserSaid(intent, 0.95, margin=0.9))
            nodes.append(state.node)
        finish = next((a for a in actions if isinstance(a, Finish)), finish)
        says = [a for a in actions if isinstance(a, Say)]
        if says:
            state, _ = step(script, state, PlaybackFinished(says[-1].say_id))
    return state, nodes, finish


@pytest.mark.parametrize(
    ("intents", "path", "outcome", "grade"),
    [
        (
            ["affirm", "edu_college", "other", "affirm", "affirm", "decide_self", "affirm"],
            ["ask_education", "ask_major", "ask_time", "ask_budget", "ask_decision", "offer"],
            Outcome.QUALIFIED,
            Grade.A,
        ),
        (
            ["affirm", "edu_highschool", "other", "affirm", "affirm", "need_discuss"],
            ["ask_education", "ask_major", "ask_time", "ask_budget", "ask_decision"],
            Outcome.QUALIFIED,
            Grade.B,
        ),
        (["affirm", "edu_junior"], ["ask_education"], Outcome.NOT_INTERESTED, None),
        (["affirm", "edu_college", "other", "busy_callback"], ["ask_time"], Outcome.CALLBACK, None),
        (["complaint_dnc"], [], Outcome.DNC, None),
    ],
)
def test_edu_qualification_paths(
    edu: Script, intents: list[str], path: list[str], outcome: Outcome, grade: Grade | None
) -> None:
    state, nodes, finish = walk(edu, intents)
    assert nodes[0] == "greeting"
    assert all(node in nodes for node in path)
    assert finish is not None and (finish.outcome, finish.grade) == (outcome, grade)
    assert state.ended


def test_edu_price_questions_are_answered_in_place_from_knowledge(edu: Script) -> None:
    state, _, _ = walk(edu, ["affirm", "edu_college", "other"])
    assert state.node == "ask_time"
    heard = UserSaid("ask_price", 0.95, "学费多少钱", margin=0.9, answer="一年三千二百元左右")
    after, actions = step(edu, state, heard)
    assert after.node == "ask_time"
    assert [a.text for a in actions if isinstance(a, Say)] == ["一年三千二百元左右"]
    fallback, actions = step(edu, state, UserSaid("ask_price", 0.95, "学费", margin=0.9))
    assert [a.text for a in actions if isinstance(a, Say)] == [
        "专升本学费一年三千元左右，可以分期，具体招生老师会给您算清楚。"
    ]


def test_a_weak_education_answer_is_confirmed_first(edu: Script) -> None:
    state, _, _ = walk(edu, ["affirm"])
    asked, actions = step(edu, state, UserSaid("edu_college", 0.4, "专科吧", margin=0.05))
    assert [a.text for a in actions if isinstance(a, Say)] == ["您是大专毕业，对吗？"]
    after, _ = step(edu, asked, UserSaid("affirm", 0.95, "对", margin=0.9))
    assert after.node == "ask_major"
