"""core.report: a tool's JSON report goes to stdout and, on request, the same text to a file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.report import emit_json


def test_the_report_is_printed_readable_and_the_file_holds_the_same_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.json"
    emit_json({"意图": "拒绝", "n": 2}, str(out), indent=1)
    printed = capsys.readouterr().out
    assert "拒绝" in printed and json.loads(printed) == {"意图": "拒绝", "n": 2}
    assert out.read_text(encoding="utf-8") == printed  # print's newline, the file's newline
    emit_json({"n": 1}, None)
    assert json.loads(capsys.readouterr().out) == {"n": 1}
    assert len(list(tmp_path.iterdir())) == 1
