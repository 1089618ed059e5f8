"""The knowledge interface: answer a caller's product question from the campaign's file.

``KnowledgeBase.answer(question, context)`` returns the best entry's spoken answer with its
score and the top candidates, or None when nothing in the file is close enough (the script then
says its own fixed line). ``callflow`` imports this module only, never an engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Candidate:
    """One entry considered for a question, with its retrieval score (higher is closer)."""

    entry_id: str
    score: float


@dataclass(frozen=True, slots=True)
class Answer:
    """The answer to speak: the entry's text, which entry, and how sure retrieval is."""

    text: str
    entry_id: str
    confidence: float  # the top candidate's score, compared with the engine's threshold
    candidates: tuple[Candidate, ...] = ()  # the top k, best first (the answer's entry first)


class KnowledgeBase(Protocol):
    name: str

    def answer(self, question: str, context: Mapping[str, Any] | None = None) -> Answer | None:
        """The answer to canonical text `question` (what the recognizer emits), or None below
        the engine's confidence threshold. Fast and synchronous (milliseconds); callers on the
        event loop run it in an executor. ``context["dialect"]``: the caller's dialect, as for
        ``nlu.base.IntentClassifier.classify``."""
        ...
