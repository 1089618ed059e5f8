"""Intent interface and the product-level taxonomy that scripts refer to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

INTENTS: tuple[str, ...] = (
    "affirm",
    "deny",
    "ask_price",
    "ask_detail",
    "ask_discount",
    "price_objection",
    "busy_callback",
    "request_info",
    "ask_identity",
    "already_have",
    "complaint_dnc",
    "request_human",
    "repeat",
    "wrong_person",
    "hesitate",
    "book_meeting",
    "voicemail",
    "other",
)


@dataclass(frozen=True, slots=True)
class IntentResult:
    intent: str  # one of INTENTS (or a script's own intent)
    confidence: float  # 0..1
    slots: dict[str, Any] = field(default_factory=dict)
    # top-1 minus top-2 probability of the model's final distribution (after n-best and the
    # state prior): small = the model hesitated between two meanings (clarify rather than act).
    # None when no distribution was computed (empty text, a fake, a custom intent).
    margin: float | None = None


class IntentClassifier(Protocol):
    name: str

    def classify(self, text: str, context: Mapping[str, Any] | None = None) -> IntentResult:
        """Classify canonical text (``core.text.canonical``: what the recognizer emits).

        Fast and synchronous (ms); callers run it in an executor when on the loop.
        ``context``: ``"dialect"`` (the caller's dialect, e.g. "yue", or None when unknown:
        dialect words are mapped to Mandarin first; absent: the text is not a caller's
        speech), ``"timezone"`` / ``"now"`` (time slots), ``"products"`` (product slots),
        ``"alternatives"`` (the recognizer's n-best: ``(text, log-prob)`` pairs, best first, as
        ``Final.alternatives``; their intent probabilities are combined, weighted by the
        hypotheses' posteriors), ``"asr_confidence"`` (the recognizer's 0..1 confidence in the
        text: a model may read a poorly heard transcript differently, ``nlu.ensemble``),
        ``"expected"`` (intents the script's current state handles: a soft prior towards them,
        never a filter).
        """
        ...
