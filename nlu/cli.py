"""Functions behind ``main.py nlu classify | train | eval`` (the lead wires the arguments).

- ``classify_stream(model, in_stream, out_stream)``: one utterance per input line -> one JSON
  object per output line ``{"text", "intent", "confidence", "slots"}``; never raises on input.
- ``train_main(out_dir)``: train, print a metrics summary as JSON, return an exit status.
- ``eval_main(model, tsv_path)``: TSV ``intent<TAB>text`` -> macro-F1, per-intent P/R/F1 and a
  confusion matrix, printed as JSON (and returned).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from nlu.base import IntentClassifier, IntentResult
from nlu.metrics import evaluate

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


def _safe_classify(model: IntentClassifier, text: str) -> IntentResult:
    try:
        return model.classify(text)
    except Exception:  # one bad line must not end the stream
        log.exception("intent classification failed", extra={"chars": len(text)})
        return IntentResult("other", 0.0, {"error": "classification_failed"})


def classify_stream(model: ModelArg, in_stream: TextIO, out_stream: TextIO) -> int:
    """Classify each line of ``in_stream``; write JSON lines; return the number written."""
    classifier = _as_classifier(model)
    written = 0
    for raw in in_stream:
        text = _clean(raw.rstrip("\r\n"))
        result = _safe_classify(classifier, text)
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


def train_main(
    out_dir: str | os.PathLike[str] = "build/nlu/linear",
    data_path: str | os.PathLike[str] | None = None,
    out_stream: TextIO | None = None,
) -> int:
    """Train into ``out_dir``; print {macro_f1, accuracy, per_intent_f1, ...}; return 0."""
    from nlu.train import train  # scikit-learn is imported only when training

    metrics = train(out_dir, data_path)
    summary = {k: v for k, v in metrics.items() if k != "heldout"}
    stream = out_stream or sys.stdout
    stream.write(json.dumps(summary, ensure_ascii=False, indent=2) + "\n")
    return 0


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


def eval_main(
    model: ModelArg, tsv_path: str | os.PathLike[str], out_stream: TextIO | None = None
) -> dict[str, Any]:
    """Evaluate on a TSV file; print the report as JSON and return it."""
    classifier = _as_classifier(model)
    gold, texts, skipped = read_tsv(tsv_path)
    pred = [_safe_classify(classifier, text).intent for text in texts]
    report = {**evaluate(gold, pred), "skipped_lines": skipped}
    stream = out_stream or sys.stdout
    stream.write(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    return report
