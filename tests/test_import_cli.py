"""`main.py campaign import`: the --json report exactly, rejected rows as file:row:column:
reason, and one line with a non-zero exit when the file or --script is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

import main
from models import Campaign, Lead, init_db

GBK = (
    "联系电话,客户名称,行业\n"
    "13800000001,张三,=cmd|'/c calc'!A1\n"
    "\n"
    "138 0000 0001,张三,\n"  # the same number again
    "1.38001E+10,李四,\n"
    "010-65529988,王五,零售\n"
)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> sessionmaker[Session]:
    url = f"sqlite:///{tmp_path}/cli.db"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text("campaign:\n  timezone: Asia/Shanghai\n")
    (tmp_path / "s1.yaml").write_text("x: 1\n")
    (tmp_path / "s2.yaml").write_text("x: 2\n")
    return init_db(url)


def run(*args: str) -> int:
    return main.main(["--config", "config.yaml", "campaign", "import", *args])


def stored(db: sessionmaker[Session]) -> tuple[int, int]:
    with db() as s:
        return s.query(Campaign).count(), s.query(Lead).count()


def test_json_report_is_exact(
    env: sessionmaker[Session], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.csv").write_bytes(GBK.encode("gbk"))
    assert run("spring", "a.csv", "--json", "--script", "s1.yaml") == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == {
        "accepted": 2,
        "duplicates": 1,
        "rejected": [
            {
                "row": 5,
                "reason": "联系电话: a number Excel turned into scientific notation (digits are "
                "lost): format the column as text in the spreadsheet and export it again",
            }
        ],
    }
    assert list(json.loads(out)) == ["accepted", "duplicates", "rejected"]
    assert out.count("\n") == 1 and err == ""
    with env() as s:
        lead = s.query(Lead).filter_by(phone="+8613800000001").one()
        assert lead.extra == {"行业": "'=cmd|'/c calc'!A1"}


def test_text_report_names_file_row_and_column(
    env: sessionmaker[Session], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.csv").write_bytes(GBK.encode("gbk"))
    assert run("spring", "a.csv") == 0
    out, err = capsys.readouterr()
    assert err.startswith("a.csv:5:联系电话: a number Excel turned into scientific notation")
    assert "accepted 2, duplicates 1, rejected 1" in out
    assert "13800000001" not in out + err  # no phone in the report


def test_map_option(
    env: sessionmaker[Session], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.csv").write_text("号码A,号码B,称呼\n13800000001,13900000002,王总\n")
    assert run("spring", "a.csv", "--map", "phone=号码B,name=称呼", "--json") == 0
    assert json.loads(capsys.readouterr().out)["accepted"] == 1
    with env() as s:
        assert s.query(Lead).one().phone == "+8613900000002"


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (b"\x00\x01\x02\xff" * 500, [], "not text in a known encoding"),
        ("姓名,城市\n张三,北京\n".encode("gbk"), [], "no phone column"),
        (b"phone\n13800000001\n", ["--map", "phone"], "not field=column"),
        (b"phone\n13800000001\n", ["--script", "missing.yaml"], "--script missing.yaml"),
        (b"phone\n13800000001\n", ["--region", "XX"], "unknown region"),
    ],
)
def test_a_refused_file_changes_nothing_and_says_why_in_one_line(
    env: sessionmaker[Session],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: bytes,
    args: list[str],
    message: str,
) -> None:
    (tmp_path / "a.csv").write_bytes(content)
    assert run("spring", "a.csv", "--json", *args) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("import failed, nothing stored: ")
    assert message in err
    assert stored(env) == (0, 0)


def test_script_of_an_existing_campaign_must_match(
    env: sessionmaker[Session], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.csv").write_text("phone\n13800000001\n")
    (tmp_path / "b.csv").write_text("phone\n13800000002\n")
    assert run("spring", "a.csv", "--script", "s1.yaml") == 0
    assert run("spring", "b.csv", "--script", "s2.yaml") == 1
    assert "uses the script s1.yaml, not s2.yaml" in capsys.readouterr().err
    assert stored(env) == (1, 1)
    assert run("spring", "b.csv", "--script", str(tmp_path / "s1.yaml")) == 0  # same file
    assert run("spring", "b.csv") == 0  # no --script: the campaign's own
    assert stored(env) == (1, 2)


def test_nothing_importable_exits_non_zero(
    env: sessionmaker[Session], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.csv").write_text("phone\n1380013800\n")
    assert run("spring", "a.csv", "--json") == 1
    assert json.loads(capsys.readouterr().out)["rejected"][0]["row"] == 2
    assert stored(env) == (0, 0)
