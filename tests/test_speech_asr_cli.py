"""``asr transcribe`` CLI function over fake engines: JSON lines, resampling, errors."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from speech import audio
from speech.asr.cli import transcribe_files
from speech.asr.fake import FakeAsr, FakeStreamAsr, utterance


def tone(seconds: float, rate: int) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return audio.float_to_pcm16(0.3 * np.sin(2 * np.pi * 300 * t))


def lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_one_json_line_per_file_with_resampling_and_errors(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.wav", tmp_path / "b.wav", tmp_path / "c.wav"
    audio.write_wav(a, tone(1.0, 8000), 8000)
    audio.write_wav(b, tone(2.0, 44100), 44100)
    audio.write_wav(c, tone(0.5, 16000), 16000)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a wav")
    asr = FakeAsr(["喂，你好", "多少錢", "好的"])
    out = io.StringIO()
    status = transcribe_files(asr, [a, b, bad, tmp_path / "missing.wav", c], out)
    assert status == 1
    rows = lines(out)
    assert [r["file"] for r in rows] == [str(p) for p in (a, b, bad, tmp_path / "missing.wav", c)]
    assert rows[0]["text"] == "喂，你好" and rows[0]["duration_s"] == 1.0
    assert rows[1]["text"] == "多少钱"  # simplified
    assert rows[1]["duration_s"] == 2.0
    assert asr.calls[1][0] == 2.0  # decoded at 16 kHz after resampling from 44.1 kHz
    assert "error" in rows[2] and "error" in rows[3]
    assert isinstance(rows[0]["rtf"], float) and rows[4]["text"] == "好的"


def test_stream_only_engine_and_all_good_exit_zero(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    audio.write_wav(path, tone(2.0, 8000), 8000)
    engine = FakeStreamAsr([utterance("我很忙", 0.1, 0.8) + utterance("再见", 1.0, 1.5)])
    out = io.StringIO()
    assert transcribe_files(engine, [path], out) == 0
    (row,) = lines(out)
    assert row["text"] == "我很忙，再见" and row["duration_s"] == 2.0


def test_hints_decode_as_a_call_on_the_script_does(tmp_path: Path, monkeypatch: Any) -> None:
    import main
    import speech.asr.cli as cli
    from callflow.script_parse import load_script
    from nlu.base import INTENTS

    seen: list[str | None] = []

    def fake_transcribe(engine: Any, paths: Any, out: Any, *, prompt: str | None = None) -> int:
        seen.append(prompt)
        return 0

    monkeypatch.setattr(cli, "transcribe_files", fake_transcribe)
    monkeypatch.setenv("CALLBOT__SPEECH__ASR_ENGINE", "fake")
    wav = tmp_path / "a.wav"
    audio.write_wav(wav, tone(0.5, 8000), 8000)
    demo = "callflow/scripts/saas_demo.yaml"
    edu = "callflow/scripts/edu_upgrade.yaml"
    for extra in (["--hints"], ["--hints", edu], ["--prompt", "坐席"], []):
        assert main.main(["asr", "transcribe", str(wav), *extra]) == 0
    want = [load_script(p, known_intents=INTENTS).asr_prompt for p in (demo, edu)]
    assert seen == [*want, "坐席", None] and want[0] != want[1]
    # a script that cannot be read is one line on stderr and status 2, no traceback
    assert main.main(["asr", "transcribe", str(wav), "--hints", str(tmp_path / "no.yaml")]) == 2
