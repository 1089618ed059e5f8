"""Few-shot custom intents: a script's own intents from 10-20 examples, no retraining.

``with_custom_intents(base, {"ask_invoice": ["能开发票吗", ...], ...})`` returns a classifier
that embeds each example once (the student's centred sentence embedding, or the linear model's
TF-IDF row when no student is loaded), keeps one centroid per custom intent, and answers a
custom intent when an utterance is close enough to its centroid; otherwise the base model
answers. The threshold of each intent is calibrated on its own examples (leave-one-out
similarity to the centroid), so tight intents get a tight threshold. With the student, the
artifact also holds a centroid per built-in intent (``intent_centroids.npz``): a custom intent
must then also be nearer than every built-in one ("多少钱" stays ask_price even when a custom
"payment terms" intent is close). Rule-layer intents
(opt-out, voicemail, request for a human) always win: a custom intent never hides an opt-out.
Building costs one embedding per example (milliseconds each). The examples are written by
hand, so they are put in canonical form (``core.text``); utterances classified are canonical.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import numpy as np

from nlu.base import INTENTS, IntentClassifier, IntentResult
from nlu.prepare import model_text, raw_model_text, spoken_mandarin
from nlu.rules import match_rule

Embed = Callable[[str], np.ndarray]
MIN_EXAMPLES: Final = 3
THRESHOLD_FLOOR: Final = {"student": 0.45, "linear": 0.25}
LOO_QUANTILE: Final = 0.1  # threshold = this quantile of leave-one-out similarities ...
LOO_SLACK: Final = 0.9  # ... times this


def embedder_for(base: Any) -> tuple[Embed, str]:
    """The base model's embedding function and its kind ("student" or "linear")."""
    if hasattr(base, "embed"):
        return base.embed, "student"
    vectorizer = getattr(base, "vectorizer", None)
    if vectorizer is None:
        raise TypeError(f"{type(base).__name__} has no embedding for custom intents")
    size = len(vectorizer.vocabulary)

    def embed(normalized: str) -> np.ndarray:
        idx, vals = vectorizer.row(normalized)
        dense = np.zeros(size, dtype=np.float32)
        dense[idx] = vals
        return dense

    return embed, "linear"


def _unit(v: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


class CustomIntentClassifier:
    """Implements ``nlu.base.IntentClassifier``: custom intents first, then the base model."""

    name = "custom"

    def __init__(
        self,
        base: IntentClassifier,
        embed: Embed,
        centroids: Mapping[str, np.ndarray],
        thresholds: Mapping[str, float],
        builtin_centroids: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        self.base = base
        self.embed = embed
        self.names = list(centroids)
        self.matrix = np.stack([centroids[n] for n in self.names]).astype(np.float32)
        self.thresholds = np.array([thresholds[n] for n in self.names], dtype=np.float32)
        builtin = [_unit(v) for v in (builtin_centroids or {}).values()]
        self.builtin = np.stack(builtin).astype(np.float32) if builtin else None

    def similarities(self, text: str) -> dict[str, float]:
        normalized = model_text(text)
        if not normalized:
            return dict.fromkeys(self.names, 0.0)
        sims = self.matrix @ _unit(self.embed(normalized))
        return {n: float(s) for n, s in zip(self.names, sims, strict=True)}

    def classify(self, text: str, context: Mapping[str, Any] | None = None) -> IntentResult:
        result = self.base.classify(text, context)
        normalized = model_text(spoken_mandarin(text, context))
        if not normalized or match_rule(normalized) is not None:
            return result
        vector = _unit(self.embed(normalized))
        sims = self.matrix @ vector
        margin = sims - self.thresholds
        best = int(margin.argmax())
        if margin[best] < 0:
            return result
        if self.builtin is not None and float((self.builtin @ vector).max()) >= sims[best]:
            return result  # nearer to a built-in intent
        slots = {k: v for k, v in result.slots.items() if k != "fallback_from"}
        slots["base_intent"] = result.intent
        confidence = round(float(min(1.0, 0.5 + margin[best])), 4)
        return IntentResult(self.names[best], confidence, slots)


def with_custom_intents(
    base: IntentClassifier, mapping: Mapping[str, Sequence[str]]
) -> CustomIntentClassifier:
    """Wrap ``base`` with custom intents given as {name: [10-20 example utterances]}."""
    embed, kind = embedder_for(base)
    centroids: dict[str, np.ndarray] = {}
    thresholds: dict[str, float] = {}
    for name, examples in mapping.items():
        if name in INTENTS:
            raise ValueError(f"custom intent {name!r} shadows a built-in intent")
        vectors = [_unit(embed(n)) for n in (raw_model_text(e) for e in examples) if n]
        if len(vectors) < MIN_EXAMPLES:
            raise ValueError(f"custom intent {name!r} needs at least {MIN_EXAMPLES} examples")
        matrix = np.stack(vectors)
        total = matrix.sum(axis=0)
        loo = [float(v @ _unit(total - v)) for v in matrix]
        thresholds[name] = max(
            THRESHOLD_FLOOR[kind], float(np.quantile(loo, LOO_QUANTILE)) * LOO_SLACK
        )
        centroids[name] = _unit(total)
    if not centroids:
        raise ValueError("no custom intents given")
    builtin = getattr(base, "intent_centroids", None) if kind == "student" else None
    return CustomIntentClassifier(base, embed, centroids, thresholds, builtin)
