"""Distilled transformer intent classifier on CTranslate2 int8 (inference side, no torch).

Folder layout (``nlu/models/student-int8``): ``ct2/`` (CTranslate2 encoder), ``tokenizer.json`` +
``charmap.json`` (``nlu.sptok``), ``head.npz`` (linear head on the mean-pooled output) and
``manifest.json`` (engine "encoder", classes, threshold, data hash, metrics, sizes, licence).

Decisions in ``classify`` are the linear model's (``nlu.postprocess``): normalize -> empty ->
``other``; rule layer; model; low confidence -> ``other``; slots and scores.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from nlu.base import INTENTS, IntentResult
from nlu.postprocess import decide, decide_batch
from nlu.sptok import SpTokenizer

MANIFEST: Final = "manifest.json"
HEAD_FILE: Final = "head.npz"
CENTROIDS_FILE: Final = "intent_centroids.npz"  # per built-in intent, for few-shot intents
CT2_DIR: Final = "ct2"
DEFAULT_MIN_CONFIDENCE: Final = 0.35


class EncoderIntentClassifier:
    """Implements ``nlu.base.IntentClassifier``. One instance can serve several threads."""

    name = "student"

    def __init__(
        self,
        *,
        encoder: Any,
        tokenizer: SpTokenizer,
        weight: np.ndarray,
        bias: np.ndarray,
        classes: Sequence[str],
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
        manifest: Mapping[str, Any] | None = None,
        embedding_mean: np.ndarray | None = None,
        intent_centroids: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        if weight.shape[0] != len(classes) or bias.shape != (len(classes),):
            raise ValueError("head does not match the classes")
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError("min_confidence must be within [0, 1]")
        unknown = set(classes) - set(INTENTS)
        if unknown:
            raise ValueError(f"classes outside the taxonomy: {sorted(unknown)}")
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.weight = np.ascontiguousarray(weight.T, dtype=np.float32)  # (hidden, classes)
        self.bias = bias.astype(np.float32)
        self.classes = tuple(classes)
        self.min_confidence = min_confidence
        self.manifest: dict[str, Any] = dict(manifest or {})
        hidden = self.weight.shape[0]
        self.embedding_mean = (
            np.zeros(hidden, np.float32) if embedding_mean is None else embedding_mean
        ).astype(np.float32)
        self.intent_centroids = dict(intent_centroids or {})

    # -- embeddings and probabilities -----------------------------------------------------
    def embed_batch(self, normalized: Sequence[str]) -> np.ndarray:
        """Mean-pooled encoder output (n, hidden) for normalized, non-empty texts."""
        if not normalized:
            return np.zeros((0, self.weight.shape[0]), dtype=np.float32)
        rows = [self.tokenizer.encode(t) for t in normalized]
        out = self.encoder.forward_batch(rows)
        hidden = np.asarray(out.last_hidden_state, dtype=np.float32)
        lengths = np.array([len(r) for r in rows])
        mask = (np.arange(hidden.shape[1])[None, :] < lengths[:, None]).astype(np.float32)
        return np.asarray((hidden * mask[..., None]).sum(1) / lengths[:, None], dtype=np.float32)

    def probabilities_batch(self, normalized: Sequence[str]) -> np.ndarray:
        logits = self.embed_batch(normalized) @ self.weight + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return np.asarray(exp / exp.sum(axis=1, keepdims=True))

    def probabilities(self, normalized: str) -> np.ndarray:
        return np.asarray(self.probabilities_batch([normalized])[0])

    def embed(self, normalized: str) -> np.ndarray:
        """Centred, L2-normalized sentence embedding (few-shot custom intents)."""
        vec = self.embed_batch([normalized])[0] - self.embedding_mean
        norm = float(np.linalg.norm(vec))
        return vec / norm if norm > 0 else vec

    # -- the IntentClassifier interface ---------------------------------------------------
    def classify(self, text: str, context: Mapping[str, Any] | None = None) -> IntentResult:
        return decide(text, self, context)

    def classify_batch(
        self, texts: Sequence[str], context: Mapping[str, Any] | None = None
    ) -> list[IntentResult]:
        """Like ``classify`` for many texts, with one encoder call (throughput)."""
        return decide_batch(texts, self, context)

    # -- persistence ----------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        model_dir: str | os.PathLike[str],
        *,
        min_confidence: float | None = None,
        threads: int = 1,
        manifest_required: bool = True,
    ) -> EncoderIntentClassifier:
        import ctranslate2

        folder = Path(model_dir)
        manifest_path = folder / MANIFEST
        if manifest_required or manifest_path.is_file():
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        else:
            manifest = {"classes": list(INTENTS)}
        encoder = ctranslate2.Encoder(
            str(folder / CT2_DIR), device="cpu", compute_type="default", intra_threads=threads
        )
        with np.load(folder / HEAD_FILE, allow_pickle=False) as head:
            weight, bias = head["weight"], head["bias"]
            mean = head["embedding_mean"] if "embedding_mean" in head.files else None
        threshold = manifest.get("min_confidence", DEFAULT_MIN_CONFIDENCE)
        return cls(
            encoder=encoder,
            tokenizer=SpTokenizer.load(folder),
            weight=weight,
            bias=bias,
            classes=manifest["classes"],
            min_confidence=threshold if min_confidence is None else min_confidence,
            manifest=manifest,
            embedding_mean=mean,
            intent_centroids=load_centroids(folder / CENTROIDS_FILE),
        )


def load_centroids(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        return {}
    with np.load(path, allow_pickle=False) as data:
        names = [str(n) for n in data["names"]]
        return dict(zip(names, data["centroids"].astype(np.float32), strict=True))


def save_centroids(path: Path, centroids: Mapping[str, np.ndarray]) -> None:
    names = sorted(centroids)
    np.savez(
        path,
        names=np.array(names),
        centroids=np.stack([centroids[n] for n in names]).astype(np.float32),
    )
