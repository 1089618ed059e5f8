"""The decisions every intent model shares, after its probabilities.

Input is canonical text (``nlu.prepare``). The caller's dialect words -> Mandarin when the
context names a dialect; model text empty -> ``other``; rule layer (opt-out, voicemail, explicit
request for a human) -> forced intent; top probability below ``min_confidence`` -> ``other``
(slot ``fallback_from`` keeps the model's guess); then slots (``nlu.slots``) and the turn's
scores (``slots["sentiment"]``, ``nlu.sentiment``).

Two context keys reshape the model's distribution before the decision (``decide`` only; a batch
shares one context, so ``decide_batch`` applies the prior but not the n-best):

- ``"alternatives"``: the recognizer's n-best, ``(text, log-prob)`` pairs (``Final.alternatives``)
  that include the text being classified. Each hypothesis is classified (one batched call when
  the model batches) and the probabilities are averaged with the hypotheses' posteriors
  (softmax of their log-probs) as weights: when Whisper hesitates between 加格 and 价格 the
  intent follows both. Rules, slots and sentiment still read the 1-best.
- ``"expected"``: the intents the script's current state handles. Each gets a likelihood ratio
  of ``EXPECTED_BOOST`` (then renormalised): a soft prior that settles a near-tie, never a
  filter (an unexpected intent more than 1.5 times as likely as every expected one still wins).
  ``complaint_dnc`` and ``request_human`` are always favoured, so a state can never suppress
  an opt-out or a request for a person.

``"asr_confidence"`` (the recognizer's confidence in the text) lets a model that offers
``for_asr_confidence`` hand a poorly heard transcript to another of its parts (``nlu.ensemble``:
its phone-trained linear model alone); ``decide`` and ``decide_batch`` both apply it.

``IntentResult.margin`` is top-1 minus top-2 of the final distribution: the clarification
policy's measure of how sure the model is between two meanings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final, Protocol

import numpy as np

from nlu.base import IntentResult
from nlu.prepare import model_text, slot_text, spoken_mandarin
from nlu.rules import RULE_CONFIDENCE, match_rule
from nlu.sentiment import scores
from nlu.slots import extract_slots

FALLBACK: Final = "other"
ALTERNATIVES_KEY: Final = "alternatives"
EXPECTED_KEY: Final = "expected"
ASR_CONFIDENCE_KEY: Final = "asr_confidence"
EXPECTED_BOOST: Final = 1.5  # likelihood ratio for the intents the state expects
ALWAYS_FAVOURED: Final = frozenset({"complaint_dnc", "request_human"})
MAX_ALTERNATIVES: Final = 4


class ProbabilisticModel(Protocol):
    classes: tuple[str, ...]
    min_confidence: float

    def probabilities(self, normalized: str) -> np.ndarray: ...


class BatchModel(ProbabilisticModel, Protocol):
    def probabilities_batch(self, normalized: Sequence[str]) -> np.ndarray: ...


def heard_model(model: ProbabilisticModel, context: Mapping[str, Any] | None) -> Any:
    """The model for a transcript heard with the context's ``asr_confidence``: what the model's
    ``for_asr_confidence`` returns, else the model itself (no confidence, a bad value, or a
    model with one way of reading)."""
    pick = getattr(model, "for_asr_confidence", None)
    raw = context.get(ASR_CONFIDENCE_KEY) if context else None
    if pick is None or raw is None or isinstance(raw, bool):
        return model
    try:
        confidence = float(raw)
    except (TypeError, ValueError):
        return model  # a malformed confidence must not break the turn
    return pick(confidence) if math.isfinite(confidence) else model


def hypotheses(text: str, context: Mapping[str, Any] | None) -> list[tuple[str, float]]:
    """The context's n-best when it applies to `text` (2+ hypotheses, `text` among them)."""
    raw = context.get(ALTERNATIVES_KEY) if context else None
    if not raw:
        return []
    try:
        pairs = [(str(hyp), float(logprob)) for hyp, logprob in raw][:MAX_ALTERNATIVES]
    except (TypeError, ValueError):
        return []  # a malformed n-best must not break the turn: classify the text alone
    if len(pairs) < 2 or text.strip() not in {hyp.strip() for hyp, _ in pairs}:
        return []
    return pairs


def nbest_probabilities(
    model: ProbabilisticModel,
    pairs: Sequence[tuple[str, float]],
    context: Mapping[str, Any] | None,
    known: tuple[str, str] | None = None,
) -> np.ndarray | None:
    """Posterior-weighted average of the hypotheses' intent probabilities (None: none usable).

    Hypotheses that read the same to the model (they differ only in punctuation, case or a
    filler) are scored once with their posteriors summed: the same average, fewer model passes.
    ``known``: ``(text, model text)`` already prepared by the caller (the 1-best), not redone.
    """
    weights = _posteriors(model_texts(pairs, context, known))
    if not weights:
        return None
    normalized = list(weights)
    if len(normalized) == 1:
        return np.asarray(model.probabilities(normalized[0]))
    batch = getattr(model, "probabilities_batch", None)
    if batch is not None:
        probs = np.asarray(batch(normalized))
    else:
        probs = np.stack([model.probabilities(n) for n in normalized])
    return np.asarray(np.array(list(weights.values())) @ probs)


def model_texts(
    pairs: Sequence[tuple[str, float]],
    context: Mapping[str, Any] | None,
    known: tuple[str, str] | None = None,
) -> list[tuple[str, float]]:
    """``(model text, log-prob)`` of the usable hypotheses (non-empty text, finite log-prob)."""
    out = []
    for hyp, logprob in pairs:
        if known is not None and hyp == known[0]:
            norm = known[1]
        else:
            norm = model_text(spoken_mandarin(hyp, context))
        if norm and math.isfinite(logprob):
            out.append((norm, logprob))
    return out


def _posteriors(scored: Sequence[tuple[str, float]]) -> dict[str, float]:
    """Softmax of the log-probs, summed per distinct model text (insertion order kept)."""
    if not scored:
        return {}
    top = max(logprob for _, logprob in scored)
    raw = [(norm, math.exp(logprob - top)) for norm, logprob in scored]
    total = sum(w for _, w in raw)
    merged: dict[str, float] = {}
    for norm, w in raw:
        merged[norm] = merged.get(norm, 0.0) + w / total
    return merged


def state_prior(
    p: np.ndarray, classes: Sequence[str], context: Mapping[str, Any] | None
) -> np.ndarray:
    """``p`` with the state's expected intents (and the never-suppressed ones) favoured."""
    expected = context.get(EXPECTED_KEY) if context else None
    if not expected or isinstance(expected, str):
        return p
    favoured = set(expected) | ALWAYS_FAVOURED
    ratio = np.array([EXPECTED_BOOST if c in favoured else 1.0 for c in classes])
    q = p * ratio
    return np.asarray(q / q.sum())


def top_margin(p: np.ndarray) -> float:
    """Top-1 minus top-2 probability (1.0 for a single class)."""
    if p.size < 2:
        return 1.0
    top2 = np.partition(p, p.size - 2)[-2:]
    return round(float(top2[1] - top2[0]), 4)


def decide(
    text: str,
    model: ProbabilisticModel,
    context: Mapping[str, Any] | None = None,
    probs: np.ndarray | None = None,
) -> IntentResult:
    """Classify one canonical text with `model` (``probs``: its probabilities, if known)."""
    if probs is None:
        model = heard_model(model, context)
    mandarin = spoken_mandarin(text, context)
    normalized = model_text(mandarin)
    pairs = hypotheses(text, context) if probs is None and normalized else []
    if pairs and match_rule(normalized) is None:
        probs = nbest_probabilities(model, pairs, context, known=(text, normalized))
    return _decide(mandarin, normalized, model, context, probs)


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
        margin = 1.0
    else:
        p = model.probabilities(normalized) if probs is None else probs
        p = state_prior(p, model.classes, context)
        margin = top_margin(p)
        best = int(p.argmax())
        intent, confidence = model.classes[best], round(float(p[best]), 4)
        dist = {c: float(v) for c, v in zip(model.classes, p, strict=True)}
        slots = {}
        if confidence < model.min_confidence and intent != FALLBACK:
            slots["fallback_from"] = intent
            intent = FALLBACK
    slots.update(extract_slots(slots.get("fallback_from", intent), slot_text(mandarin), context))
    slots["sentiment"] = scores(dist, normalized)
    return IntentResult(intent, confidence, slots, margin)


def decide_batch(
    texts: Sequence[str], model: BatchModel, context: Mapping[str, Any] | None = None
) -> list[IntentResult]:
    """``decide`` for many texts, with one batched model call (throughput)."""
    model = heard_model(model, context)
    mandarin = [spoken_mandarin(t, context) for t in texts]
    normalized = [model_text(m) for m in mandarin]
    todo = [n for n in normalized if n]
    probs = dict(zip(todo, model.probabilities_batch(todo), strict=True))
    return [
        _decide(m, n, model, context, probs.get(n))
        for m, n in zip(mandarin, normalized, strict=True)
    ]
