"""CLI functions and the fake classifier, without a trained model."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

from nlu import FakeClassifier, IntentResult
from nlu.cli import classify_stream, eval_main, read_tsv
from nlu.training.metrics import evaluate


def test_fake_classifier_keywords_and_exact() -> None:
    fake = FakeClassifier(exact={"嗯哼": "affirm"})
    assert fake.classify("多少钱？").intent == "ask_price"
    assert fake.classify("别再打了").intent == "complaint_dnc"
    assert fake.classify("嗯哼").intent == "affirm"
    assert fake.classify("今天天气").intent == "other"
    assert fake.calls == ["多少钱？", "别再打了", "嗯哼", "今天天气"]


def test_fake_classifier_custom_table() -> None:
    fake = FakeClassifier({"团购": "ask_discount"}, default="deny")
    assert fake.classify("团购价呢").intent == "ask_discount"
    assert fake.classify("好的").intent == "deny"


class Exploding:
    name = "exploding"

    def classify(self, text: str, context: Mapping[str, Any] | None = None) -> IntentResult:
        raise RuntimeError("boom")


def test_classify_stream_never_raises() -> None:
    out = io.StringIO()
    assert classify_stream(Exploding(), io.StringIO("a\nb\n"), out) == 2
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["intent"] for r in records] == ["other", "other"]
    assert records[0]["confidence"] == 0.0


def test_classify_stream_writes_one_object_per_line() -> None:
    out = io.StringIO()
    classify_stream(FakeClassifier(), io.StringIO("好的\r\n\n多少钱"), out)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["text"] for r in records] == ["好的", "", "多少钱"]
    assert [r["intent"] for r in records] == ["affirm", "other", "ask_price"]
    assert "好的" in out.getvalue()  # not \\u escaped


def test_read_tsv_and_eval(tmp_path) -> None:
    tsv = tmp_path / "t.tsv"
    tsv.write_text("ask_price\t多少钱\ndeny\t好的\n\nbroken\n", encoding="utf-8")
    gold, texts, skipped = read_tsv(tsv)
    assert gold == ["ask_price", "deny"] and texts == ["多少钱", "好的"] and skipped == 1
    report = eval_main(FakeClassifier(), tsv, io.StringIO())
    assert report["accuracy"] == 0.5
    assert report["confusion"]["deny"] == {"affirm": 1}


def test_metrics() -> None:
    report = evaluate(["a", "a", "b", "b"], ["a", "b", "b", "b"])
    assert report["per_intent"]["a"] == {
        "precision": 1.0,
        "recall": 0.5,
        "f1": 0.6667,
        "support": 2,
    }
    assert report["per_intent"]["b"]["precision"] == 0.6667
    assert report["macro_f1"] == round((0.6667 + 0.8) / 2, 4)
    assert report["confusion"] == {"a": {"a": 1, "b": 1}, "b": {"b": 2}}


def test_main_nlu_classify_exits_zero_after_writing_its_lines() -> None:
    """`main.py nlu classify` exits 0 (not the line count) so `set -e` scripts can run it."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "CALLBOT__NLU__ENGINE": "fake", "PYTHONIOENCODING": "utf-8"}
    done = subprocess.run(
        [sys.executable, str(root / "main.py"), "nlu", "classify"],
        input="多少钱\n别再打了\n好的\n",
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=root,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["text"] for r in records] == ["多少钱", "别再打了", "好的"]
    assert [r["intent"] for r in records] == ["ask_price", "complaint_dnc", "affirm"]


def test_classify_main_returns_zero() -> None:
    from nlu.cli import classify_main

    out = io.StringIO()
    assert classify_main(Exploding(), io.StringIO("a\nb\nc\n"), out) == 0
    assert len(out.getvalue().splitlines()) == 3


class Recording:
    name = "recording"

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def classify(self, text: str, context: Mapping[str, Any] | None = None) -> IntentResult:
        self.seen.append((text, dict(context or {})))
        return IntentResult("affirm", 0.9)


def test_asr_transcribe_lines_are_read_as_transcripts_with_their_confidence() -> None:
    model = Recording()
    lines = [
        json.dumps({"file": "a.wav", "text": "加格多少", "confidence": 0.31}, ensure_ascii=False),
        json.dumps({"text": "好的"}, ensure_ascii=False),
        '{"text": 5}',  # not a transcript: the line itself
        "{不是JSON",
        json.dumps({"text": "嗯", "confidence": True}, ensure_ascii=False),
        "多少钱",
    ]
    out = io.StringIO()
    classify_stream(model, io.StringIO("\n".join(lines) + "\n"), out, {"timezone": "UTC"})
    texts = [json.loads(line)["text"] for line in out.getvalue().splitlines()]
    assert texts == ["加格多少", "好的", '{"text": 5}', "{不是JSON", "嗯", "多少钱"]
    contexts = [ctx for _, ctx in model.seen]
    assert contexts[0] == {"timezone": "UTC", "asr_confidence": 0.31}
    assert all(ctx == {"timezone": "UTC"} for ctx in contexts[1:])
