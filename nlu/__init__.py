"""Intent recognition for callee utterances.

Public surface::

    from nlu import load_classifier
    clf = load_classifier("nlu/models/student-int8")   # or build/nlu/linear; kind from manifest
    clf.classify("我现在在开会你明天下午再打给我吧", {"timezone": "Asia/Shanghai"})
    # IntentResult(intent='busy_callback', confidence=0.9..., slots={'time': '明天下午',
    #              'callback_at': '2026-...T15:00:00+08:00', 'sentiment': {...}})

    custom = with_custom_intents(clf, {"ask_invoice": ["能开发票吗", ...]})

``classify`` takes canonical text (``core.text``): the recognizer's transcripts are, and other
text is put in that form where it enters (``nlu.cli``, ``nlu.prepare.raw_model_text``). With
``context["dialect"]`` set (the call path), the caller's dialect words become Mandarin first.
Training and offline evaluation live in ``nlu.training``; nothing here imports it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Final

from nlu.base import INTENTS, IntentClassifier, IntentResult
from nlu.fake import FakeClassifier
from nlu.fewshot import CustomIntentClassifier, with_custom_intents
from nlu.linear import MANIFEST, LinearIntentClassifier

# the ensemble's cascade defaults (nlu.ensemble; chosen by nlu.training.cascade on a dev split)
DEFAULT_CASCADE_TAU: Final = 0.95
DEFAULT_CASCADE_MARGIN: Final = 0.15
Cascade = tuple[float | None, float]

DEFAULT_MODEL_DIR: Final = Path("build/nlu/linear")
STUDENT_MODEL_DIR: Final = Path("nlu/models/student-int8")  # committed (nlu/models/README.md)
BUILD_COMMAND: Final = (
    ".venv/bin/python -c \"from nlu.training.train import train; train('build/nlu/linear')\""
)
_REPO: Final = Path(__file__).resolve().parent.parent

__all__ = [
    "BUILD_COMMAND",
    "DEFAULT_MODEL_DIR",
    "INTENTS",
    "STUDENT_MODEL_DIR",
    "CustomIntentClassifier",
    "FakeClassifier",
    "IntentClassifier",
    "IntentResult",
    "LinearIntentClassifier",
    "ModelNotFoundError",
    "load_classifier",
    "model_engine",
    "with_custom_intents",
]


class ModelNotFoundError(FileNotFoundError):
    """The intent model folder is missing or incomplete; the message says how to build it."""


def _resolve(path: str | os.PathLike[str] | None) -> Path:
    if path is not None:
        found = Path(path)
        if not found.is_absolute() and not found.exists() and (_REPO / found).exists():
            return _REPO / found  # a repo-relative path from another working directory
        return found
    if (_REPO / STUDENT_MODEL_DIR / MANIFEST).is_file():
        return _REPO / STUDENT_MODEL_DIR  # committed; the best model on the held-out split
    if (DEFAULT_MODEL_DIR / MANIFEST).is_file():
        return DEFAULT_MODEL_DIR  # relative to the working directory
    return _REPO / DEFAULT_MODEL_DIR


def model_engine(folder: str | os.PathLike[str]) -> str:
    """The engine a model folder holds ("linear" or "encoder"), read from its manifest."""
    manifest = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    return str(manifest.get("engine", "linear"))


def _load_encoder(
    folder: Path,
    min_confidence: float | None,
    linear_dir: str | None,
    cascade: Cascade,
    linear_only_below: float | None,
) -> IntentClassifier:
    """The student; with the linear model it ships (manifest "ensemble"), their average."""
    from nlu.encoder import EncoderIntentClassifier

    student = EncoderIntentClassifier.load(folder, min_confidence=min_confidence)
    ensemble = student.manifest.get("ensemble")
    if not ensemble:
        return student
    from nlu.ensemble import EnsembleIntentClassifier

    linear_path = folder / (linear_dir or ensemble["linear_dir"])
    if not (linear_path / MANIFEST).is_file():
        raise ModelNotFoundError(f"no linear model at {linear_path} (no {MANIFEST})")
    linear = LinearIntentClassifier.load(linear_path)
    heard_dir = ensemble.get("heard_linear_dir") if linear_dir is None else None
    heard = LinearIntentClassifier.load(folder / heard_dir) if heard_dir else None
    return EnsembleIntentClassifier(
        student,
        linear,
        linear_weight=float(ensemble["linear_weight"]),
        min_confidence=min_confidence,
        cascade_tau=cascade[0],
        cascade_margin=cascade[1],
        linear_only_below=linear_only_below,
        heard_linear=heard,
    )


def load_classifier(
    path: str | os.PathLike[str] | None = None,
    *,
    min_confidence: float | None = None,
    linear: str | None = None,
    cascade_tau: float | None = DEFAULT_CASCADE_TAU,
    cascade_margin: float = DEFAULT_CASCADE_MARGIN,
    linear_only_below: float | None = None,
) -> LinearIntentClassifier | IntentClassifier:
    """Load an intent model folder; its manifest names the kind.

    Default: the committed ``nlu/models/student-int8`` (student + linear ensemble), else
    ``build/nlu/linear``.

    ``linear``: char/pinyin TF-IDF + logistic regression (numpy). ``encoder``: the distilled
    student on CTranslate2 int8 (ctranslate2 + tokenizers + numpy), averaged with the linear
    model stored inside its folder when its manifest says so (``nlu.ensemble``). ``min_confidence``
    overrides the saved low-confidence threshold (below it -> ``other``). ``linear`` names another
    linear-model subfolder for the ensemble than the manifest's (``"linear"``: the text-only
    model the phone-trained ``linear-ear`` replaced, kept as the benchmarks' baseline).
    ``cascade_tau``/``cascade_margin``: the ensemble skips the student when the linear model
    alone is that sure (``nlu.ensemble``; ``cascade_tau=None``: always both).
    ``linear_only_below``: the ensemble reads a transcript heard with a lower
    ``context["asr_confidence"]`` with its linear model alone (``nlu.ensemble``; None: off). Raises
    ModelNotFoundError naming the build command when the folder has no model.
    """
    folder = _resolve(path)
    if not (folder / MANIFEST).is_file():
        raise ModelNotFoundError(
            f"intent model not found at {folder} (no {MANIFEST}); build it with: "
            f"{BUILD_COMMAND}  (or: python main.py nlu train --out {folder})"
        )
    if model_engine(folder) == "encoder":
        cascade = (cascade_tau, cascade_margin)
        return _load_encoder(folder, min_confidence, linear, cascade, linear_only_below)
    return LinearIntentClassifier.load(folder, min_confidence=min_confidence)
