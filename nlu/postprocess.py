"""The decisions every intent model shares, after its probabilities.

Input is canonical text (``nlu.prepare``). The caller's dialect words -> Mandarin when the
context names a dialect; model text empty -> ``other``; rule layer (opt-out, voicemail, explicit
request for a human) -> forced intent; top probability below ``min_confidence`` -> ``other``
(slot ``fallback_from`` keeps the model's guess); then slots (``nlu.slots``) and the turn's
scores (``slots["sentiment"]``, ``nlu.sentiment``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, Protocol

import numpy as np

from nlu.base import IntentResult
from nlu.prepare import model_text, slot_text, spoken_mandarin
from nlu.rules import RULE_CONFIDENCE, match_rule
from nlu.sentiment import scores
from nlu.slots import extract_slots

FALLBACK: Final = "other"


class ProbabilisticModel(Protocol):
    classes: tuple[str, ...]
    min_confidence: float

    def probabilities(self, normalized: str) -> np.ndarray: ...


class BatchModel(ProbabilisticModel, Protocol):
    def probabilities_batch(self, normalized: Sequence[str]) -> np.ndarray: ...


def decide(
    text: str,
    model: ProbabilisticModel,
    context: Mapping[str, Any] | None = None,
    probs: np.ndarray | None = None,
) -> IntentResult:
    """Classify one canonical text with `model` (``probs``: its probabilities, if known)."""
    mandarin = spoken_mandarin(text, context)
    return _decide(mandarin, model_text(mandarin), model, context, probs)


def _decide(
    mandarin: str,
    normalized: str,
    model: ProbabilisticModel,
    context: Mapping[str, Any] | None,
    probs: np.ndarray | None,
) -> IntentResult:
    if not normalized:
        return IntentResult(FALLBACK, 1.0)
    forced = match_rule(normalized)
    if forced is not None:
        intent, confidence = forced, RULE_CONFIDENCE
        dist: dict[str, float] = {forced: 1.0}
        slots: dict[str, Any] = {}
    else:
        p = model.probabilities(normalized) if probs is None else probs
        best = int(p.argmax())
        intent, confidence = model.classes[best], round(float(p[best]), 4)
        dist = {c: float(v) for c, v in zip(model.classes, p, strict=True)}
        slots = {}
        if confidence < model.min_confidence and intent != FALLBACK:
            slots["fallback_from"] = intent
            intent = FALLBACK
    slots.update(extract_slots(slots.get("fallback_from", intent), slot_text(mandarin), context))
    slots["sentiment"] = scores(dist, normalized)
    return IntentResult(intent, confidence, slots)


def decide_batch(
    texts: Sequence[str], model: BatchModel, context: Mapping[str, Any] | None = None
) -> list[IntentResult]:
    """``decide`` for many texts, with one batched model call (throughput)."""
    mandarin = [spoken_mandarin(t, context) for t in texts]
    normalized = [model_text(m) for m in mandarin]
    todo = [n for n in normalized if n]
    probs = dict(zip(todo, model.probabilities_batch(todo), strict=True))
    return [
        _decide(m, n, model, context, probs.get(n))
        for m, n in zip(mandarin, normalized, strict=True)
    ]
