"""Intent recognition for callee utterances.

Public surface::

    from nlu import load_classifier
    clf = load_classifier()                 # build/nlu/linear, trained at install time
    clf.classify("我现在在开会你明天下午再打给我吧")
    # IntentResult(intent='busy_callback', confidence=0.9..., slots={'time': '明天下午'})
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from nlu.base import INTENTS, IntentClassifier, IntentResult
from nlu.fake import FakeClassifier
from nlu.linear import MANIFEST, LinearIntentClassifier

DEFAULT_MODEL_DIR: Final = Path("build/nlu/linear")
BUILD_COMMAND: Final = (
    ".venv/bin/python -c \"from nlu.train import train; train('build/nlu/linear')\""
)
_REPO: Final = Path(__file__).resolve().parent.parent

__all__ = [
    "BUILD_COMMAND",
    "DEFAULT_MODEL_DIR",
    "INTENTS",
    "FakeClassifier",
    "IntentClassifier",
    "IntentResult",
    "LinearIntentClassifier",
    "ModelNotFoundError",
    "load_classifier",
]


class ModelNotFoundError(FileNotFoundError):
    """The intent model folder is missing or incomplete; the message says how to build it."""


def _resolve(path: str | os.PathLike[str] | None) -> Path:
    if path is not None:
        return Path(path)
    if (DEFAULT_MODEL_DIR / MANIFEST).is_file():
        return DEFAULT_MODEL_DIR  # relative to the working directory
    return _REPO / DEFAULT_MODEL_DIR


def load_classifier(
    path: str | os.PathLike[str] | None = None, *, min_confidence: float | None = None
) -> LinearIntentClassifier:
    """Load the linear intent model (default ``build/nlu/linear``).

    ``min_confidence`` overrides the saved low-confidence threshold (below it -> ``other``).
    Raises ModelNotFoundError naming the build command when the model has not been built.
    """
    folder = _resolve(path)
    if not (folder / MANIFEST).is_file():
        raise ModelNotFoundError(
            f"intent model not found at {folder} (no {MANIFEST}); build it with: "
            f"{BUILD_COMMAND}  (or: python main.py nlu train --out {folder})"
        )
    return LinearIntentClassifier.load(folder, min_confidence=min_confidence)
