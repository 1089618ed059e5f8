"""A knowledge base for unit tests: answers from a fixed {phrase: (entry id, answer)} table.

A question containing a phrase gets that entry's answer with confidence 1.0; anything else
gets None (the script's fallback line). Used by the ``fake`` knowledge engine as well.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import Answer, Candidate


class FakeKnowledgeBase:
    """Implements ``nlu.knowledge.base.KnowledgeBase``; records the questions it was asked."""

    name = "fake"

    def __init__(self, table: Mapping[str, tuple[str, str]] | None = None) -> None:
        self.table = dict(table or {"多少钱": ("price", "标准版每个坐席每月三百元。")})
        self.asked: list[str] = []

    def answer(self, question: str, context: Mapping[str, Any] | None = None) -> Answer | None:
        self.asked.append(question)
        for phrase, (entry_id, text) in self.table.items():
            if phrase in question:
                return Answer(text, entry_id, 1.0, (Candidate(entry_id, 1.0),))
        return None
