"""Character/pinyin n-gram TF-IDF + logistic regression intent classifier (inference side).

On disk (no pickle): ``vocab.json`` (feature tokens in column order), ``weights.npz`` (idf,
coef as (features, classes), intercept) and ``manifest.json`` (classes, feature config,
threshold, metrics, data hash). Loading needs numpy only; scikit-learn is used to train.

Order of decisions in ``classify``: normalize -> empty -> ``other``; rule layer (opt-out,
voicemail) -> forced intent; model -> softmax; top probability below ``min_confidence`` ->
``other`` (slot ``fallback_from`` keeps the model's guess).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from nlu.base import INTENTS, IntentResult
from nlu.features import FeatureConfig, Vectorizer
from nlu.postprocess import decide

MANIFEST: Final = "manifest.json"
VOCAB: Final = "vocab.json"
WEIGHTS: Final = "weights.npz"
DEFAULT_MIN_CONFIDENCE: Final = 0.35


class LinearIntentClassifier:
    """Implements ``nlu.base.IntentClassifier``; thread-safe (read-only after construction)."""

    name = "linear"

    def __init__(
        self,
        *,
        vectorizer: Vectorizer,
        classes: Sequence[str],
        coef: np.ndarray,
        intercept: np.ndarray,
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
        manifest: Mapping[str, Any] | None = None,
    ) -> None:
        if coef.shape != (len(vectorizer.vocabulary), len(classes)):
            raise ValueError(f"coef shape {coef.shape} does not match vocabulary x classes")
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError("min_confidence must be within [0, 1]")
        unknown = set(classes) - set(INTENTS)
        if unknown:
            raise ValueError(f"classes outside the taxonomy: {sorted(unknown)}")
        self.vectorizer = vectorizer
        self.classes = tuple(classes)
        self.coef = coef.astype(np.float32)
        self.intercept = intercept.astype(np.float32)
        self.min_confidence = min_confidence
        self.manifest: dict[str, Any] = dict(manifest or {})

    # -- inference ------------------------------------------------------------------------
    def probabilities(self, normalized: str) -> np.ndarray:
        """Class probabilities (in ``self.classes`` order) for a normalized text."""
        idx, vals = self.vectorizer.row(normalized)
        scores = self.intercept + vals @ self.coef[idx]
        scores = scores - scores.max()
        exp = np.exp(scores)
        return np.asarray(exp / exp.sum())

    def classify(self, text: str, context: Mapping[str, Any] | None = None) -> IntentResult:
        """Classify one utterance; ``context`` carries the lead's timezone for time slots."""
        return decide(text, self, context)

    # -- persistence ----------------------------------------------------------------------
    def save(
        self, out_dir: str | os.PathLike[str], extra_manifest: Mapping[str, Any] | None = None
    ) -> Path:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / VOCAB).write_text(
            json.dumps(self.vectorizer.vocabulary, ensure_ascii=False), encoding="utf-8"
        )
        np.savez_compressed(
            out / WEIGHTS, idf=self.vectorizer.idf, coef=self.coef, intercept=self.intercept
        )
        manifest = {
            **self.manifest,
            **(extra_manifest or {}),
            "engine": self.name,
            "classes": list(self.classes),
            "features": self.vectorizer.config.to_json(),
            "min_confidence": self.min_confidence,
        }
        self.manifest = manifest
        # written last: its presence marks a complete model folder
        (out / MANIFEST).write_text(
            json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8"
        )
        return out

    @classmethod
    def load(
        cls, model_dir: str | os.PathLike[str], *, min_confidence: float | None = None
    ) -> LinearIntentClassifier:
        """Load a model folder; ``min_confidence`` overrides the threshold saved with it."""
        folder = Path(model_dir)
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        vocab = json.loads((folder / VOCAB).read_text(encoding="utf-8"))
        with np.load(folder / WEIGHTS, allow_pickle=False) as weights:
            idf, coef, intercept = weights["idf"], weights["coef"], weights["intercept"]
        config = FeatureConfig.from_json(manifest["features"])
        threshold = manifest.get("min_confidence", DEFAULT_MIN_CONFIDENCE)
        return cls(
            vectorizer=Vectorizer(config, vocab, idf),
            classes=manifest["classes"],
            coef=coef,
            intercept=intercept,
            min_confidence=threshold if min_confidence is None else min_confidence,
            manifest=manifest,
        )
