"""Script authoring: `main.py script check` names every problem with its line; scripts are
versioned (a campaign pins the version it dials with) and an edited file applies to new calls
without restarting the node, while a broken edit keeps the last good version."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from app.authoring import script_check_main
from app.config import load_config
from app.runtime import Runtime
from callflow.check import check_script
from campaigns.scriptversions import pin, versions, versions_main
from core.yamlload import load_yaml_marked
from models import Campaign, init_db
from nlu.base import INTENTS
from tests.nodeenv import fake_node_env

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "callflow" / "scripts"
DATA = Path(__file__).parent / "data"


def problems(path: Path) -> list[tuple[int, str, str]]:
    return [(p.line, p.level, p.message) for p in check_script(path, known_intents=INTENTS)]


def has(found: list[tuple[int, str, str]], line: int, level: str, words: str) -> bool:
    return any(x[0] == line and x[1] == level and words in x[2] for x in found)


@pytest.mark.parametrize("name", ["saas_demo.yaml", "edu_upgrade.yaml"])
def test_the_real_scripts_pass(name: str) -> None:
    assert problems(SCRIPTS / name) == []


def test_the_strict_loader_marks_the_line_of_every_key_and_item(tmp_path: Path) -> None:
    f = tmp_path / "x.yaml"
    f.write_text("a: 1\nb:\n  c: [x, y]\n  d:\n    - e\n")
    data, marks = load_yaml_marked(f)
    assert data == {"a": 1, "b": {"c": ["x", "y"], "d": ["e"]}}
    assert marks[("a",)] == 1 and marks[("b", "c")] == 3 and marks[("b", "d", 0)] == 5


def test_a_broken_script_names_each_problem_with_its_line() -> None:
    found = problems(DATA / "broken_script.yaml")
    assert has(found, 8, "error", "undefined intent 'ask_pricee'")
    assert has(found, 16, "error", "undefined state 'end_nowhere'")
    assert has(found, 17, "error", "undefined intent 'maybe_later'")
    assert has(found, 19, "error", "undefined placeholder {discount}")
    assert has(found, 22, "error", "no knowledge file")
    assert has(found, 30, "error", "missing prompt")
    assert len(found) == 6


def test_graph_problems_and_the_missing_disclosure_are_named_with_their_lines() -> None:
    found = problems(DATA / "loop_script.yaml")
    assert has(found, 8, "error", "missing AI disclosure")
    assert has(found, 17, "error", "loop without exit: details -> pitch -> details")
    assert has(found, 21, "warning", "unreachable state 'orphan'")
    assert len(found) == 3


def test_personal_placeholders_need_a_known_slot_and_a_fallback(tmp_path: Path) -> None:
    text = (SCRIPTS / "edu_upgrade.yaml").read_text(encoding="utf-8")
    text = text.replace("好的。请问", "好的。{slot.degree|}{lead.city}请问")
    f = tmp_path / "edu_upgrade.yaml"
    f.write_text(text, encoding="utf-8")
    shutil.copy(SCRIPTS / "edu_upgrade.knowledge.yaml", tmp_path)
    found = problems(f)
    line = next(i for i, x in enumerate(text.splitlines(), 1) if "{slot.degree|}" in x)
    assert has(found, line, "error", "undefined slot {slot.degree}")
    assert has(found, line, "error", "{lead.city} has no fallback")


def test_yaml_errors_and_missing_files_are_one_line_each(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nstates:\n  a: {say: [unclosed\n")
    (found,) = problems(bad)
    assert found[1] == "error" and found[0] >= 3
    (missing,) = problems(tmp_path / "nope.yaml")
    assert "not found" in missing[2]


def test_recordings_missing_on_disk_are_errors_and_unrecorded_lines_warnings(
    tmp_path: Path,
) -> None:
    rec = tmp_path / "rec"
    rec.mkdir()
    (rec / "manifest.yaml").write_text(
        "lines:\n  可能信号不太好，我们稍后再联系您。再见！: bye.wav\n", encoding="utf-8"
    )
    out = tmp_path / "out.txt"
    with out.open("w") as f:
        rc = script_check_main([SCRIPTS / "saas_demo.yaml"], f, recordings=rec)
    lines = out.read_text().splitlines()
    assert rc == 1
    assert any("error: missing recording: bye.wav not on disk" in x for x in lines)
    assert any("warning: no recording for this line" in x for x in lines)


def test_the_command_prints_file_line_level_and_exits_1_on_errors() -> None:
    run = subprocess.run(
        [sys.executable, "main.py", "script", "check", str(DATA / "loop_script.yaml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1, run.stderr
    assert f"{DATA / 'loop_script.yaml'}:21: warning: unreachable state" in run.stdout
    ok = subprocess.run(
        [sys.executable, "main.py", "script", "check", str(SCRIPTS / "edu_upgrade.yaml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (ok.returncode, ok.stdout) == (0, "")


# ---- versions -----------------------------------------------------------------------------


def test_same_content_is_one_version_and_each_edit_the_next(tmp_path: Path) -> None:
    db = init_db(f"sqlite:///{tmp_path / 'v.db'}")
    with db() as s:
        s.add(Campaign(name="c1", script="s.yaml"))
        s.commit()
    v1 = pin(db, "s.yaml", "demo", b"name: demo\n")
    assert pin(db, "s.yaml", "demo", b"name: demo\n") == v1
    v2 = pin(db, "s.yaml", "demo", b"name: demo\n# edited\n")
    assert (v1.version, v2.version) == (1, 2)
    with db() as s:
        assert s.scalar(select(Campaign.script_version_id)) == v2.id
    listed = versions(db, "demo")
    assert [(v.version, v.campaigns) for v in listed] == [(1, 0), (2, 1)]
    out = tmp_path / "o.txt"
    with out.open("w") as f:
        assert versions_main(db, "demo", f) == 0
        assert versions_main(db, "other", f) == 1
    text = out.read_text()
    assert f"v2  sha256:{v2.sha256[:12]}" in text and "no stored version of 'other'" in text


async def test_an_edited_script_applies_to_new_calls_without_a_restart(tmp_path: Path) -> None:
    script = tmp_path / "saas_demo.yaml"
    shutil.copy(SCRIPTS / "saas_demo.yaml", script)
    shutil.copy(SCRIPTS / "saas_demo.knowledge.yaml", tmp_path)
    env = fake_node_env(tmp_path, CALLBOT__CALLFLOW__SCRIPT=str(script))
    cfg = load_config("config.yaml", env=env)
    async with Runtime(cfg) as rt:
        with rt.db() as s:
            s.add(Campaign(name="c", script=str(script)))
            s.commit()
        dialer = await rt.dialer_for(str(script))
        first = dialer._make_session
        old = rt.script(str(script))
        assert [v.version for v in versions(rt.db, "saas_demo")] == [1]

        text = script.read_text(encoding="utf-8").replace("祝您生意兴隆", "祝您万事如意")
        script.write_text(text, encoding="utf-8")
        await rt.refresh_scripts()
        new = rt.script(str(script))
        assert "祝您万事如意" in new.states["end_qualified"].say
        assert "祝您生意兴隆" in old.states["end_qualified"].say  # a call in progress keeps it
        assert dialer._make_session is not first
        assert await rt.dialer_for(str(script)) is dialer  # one dialer, new sessions
        listed = versions(rt.db, "saas_demo")
        assert [(v.version, v.campaigns) for v in listed] == [(1, 0), (2, 1)]

        script.write_text(text.replace("start: greeting", "start: nowhere"), encoding="utf-8")
        await rt.refresh_scripts()  # a broken edit: logged, the last good version goes on
        assert rt.script(str(script)) is new
        assert [v.version for v in versions(rt.db, "saas_demo")] == [1, 2]


def test_every_bad_condition_and_branch_target_is_named(tmp_path: Path) -> None:
    text = (SCRIPTS / "edu_upgrade.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "      affirm: ask_budget\n",
        '      affirm: [{when: "intent.decide_selff", goto: ask_budget}, {goto: ask_nowhere}]\n'
        '      deny: [{when: "slot.budgte > 1", goto: end_callback}, {goto: end_dnc}]\n',
    ).replace("      deny: end_not_interested\n\n  ask_budget:", "\n  ask_budget:")
    f = tmp_path / "edu_upgrade.yaml"
    f.write_text(text, encoding="utf-8")
    shutil.copy(SCRIPTS / "edu_upgrade.knowledge.yaml", tmp_path)
    found = problems(f)
    lines = text.splitlines()
    branch = next(i for i, x in enumerate(lines, 1) if "decide_selff" in x)
    assert has(found, branch, "error", "unknown intent 'decide_selff'")
    assert has(found, branch, "error", "undefined state 'ask_nowhere'")
    assert has(found, branch + 1, "error", "unknown slot 'budgte'")
