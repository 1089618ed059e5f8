"""Retrieval engines: ``lexical`` (TF-IDF over characters and pinyin) and ``hybrid`` (lexical
fused with the intent model's sentence embedding). Both implement ``KnowledgeBase``.

An entry's score is ``weight * lexical + (1 - weight) * dense`` (``lexical`` alone: weight 1).
The top entry is answered when its score reaches ``threshold``; below it ``answer`` returns
None and the script says its fixed line. The defaults were chosen on the *dev* part of
``bench/data/knowledge_questions.tsv`` (``bench/knowledge.py --tune``): the weight that ranks
best, then the threshold that scores best when a right answer counts +1, a fallback 0 and a
wrong answer -2 (a wrong fact costs more than the script's generic line). The test part was
not looked at for either.

An index is built once per file content and embedder (``open_knowledge_base`` caches it by the
file's SHA-256), in well under a second for a few hundred questions; a query then costs a
TF-IDF row and, for ``hybrid``, one encoder pass (a few ms on one thread).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import numpy as np

from nlu.prepare import model_text, spoken_mandarin

from .base import Answer, Candidate
from .file import KnowledgeFile, load_knowledge
from .index import Embed, Index

ENGINES: Final = ("hybrid", "lexical")
# chosen on the dev split (module docstring); see bench/knowledge.py --tune
HYBRID_WEIGHT: Final = 0.7
HYBRID_THRESHOLD: Final = 0.35
LEXICAL_THRESHOLD: Final = 0.3  # set by hand, not tuned
TOP_K: Final = 3


class RetrievalKnowledgeBase:
    """Implements ``nlu.knowledge.base.KnowledgeBase`` over one knowledge file."""

    def __init__(
        self,
        index: Index,
        *,
        weight: float | None = None,
        threshold: float | None = None,
        top_k: int = TOP_K,
    ) -> None:
        hybrid = index.embed is not None
        self.name = "hybrid" if hybrid else "lexical"
        self.index = index
        self.weight = (HYBRID_WEIGHT if hybrid else 1.0) if weight is None else weight
        if not 0.0 <= self.weight <= 1.0:
            raise ValueError("weight must be within [0, 1]")
        default = HYBRID_THRESHOLD if hybrid else LEXICAL_THRESHOLD
        self.threshold = default if threshold is None else threshold
        self.top_k = top_k

    def scores(self, question: str, context: Mapping[str, Any] | None = None) -> np.ndarray:
        """The fused score of every entry (zeros for a question with nothing in it)."""
        # caller speech: the dialect words safe in Mandarin (啥, 咋 ...) always apply
        text = model_text(spoken_mandarin(question, {"dialect": None, **(context or {})}))
        if not text:
            return np.zeros(self.index.n_entries, dtype=np.float32)
        fused = self.index.lexical(text)
        if self.weight < 1.0:
            fused = self.weight * fused + (1.0 - self.weight) * self.index.dense(text)
        return np.asarray(fused, dtype=np.float32)

    def ranked(self, question: str, context: Mapping[str, Any] | None = None) -> list[Candidate]:
        """The top-k entries with their scores, best first (no threshold applied)."""
        scores = self.scores(question, context)
        order = np.argsort(-scores, kind="stable")[: self.top_k]
        entries = self.index.kfile.entries
        return [Candidate(entries[i].id, round(float(scores[i]), 4)) for i in order]

    def answer(self, question: str, context: Mapping[str, Any] | None = None) -> Answer | None:
        top = self.ranked(question, context)
        if not top or top[0].score < self.threshold:
            return None
        entry = self.index.kfile.entry(top[0].entry_id)
        return Answer(entry.answer, entry.id, top[0].score, tuple(top))


_CACHE: dict[tuple[str, str, int], Index] = {}
_LOCK = threading.Lock()


def build_index(kfile: KnowledgeFile, embed: Embed | None) -> Index:
    """The index of `kfile` with `embed`, built once per file content and embedder."""
    owner = getattr(embed, "__self__", embed)  # a bound method: its model
    key = (kfile.sha256, "dense" if embed is not None else "lexical", id(owner))
    with _LOCK:
        index = _CACHE.get(key)
        if index is None or not kfile.sha256:
            index = Index(kfile, embed)
            if kfile.sha256:
                _CACHE[key] = index
    return index


def open_knowledge_base(
    path: str | Path,
    *,
    engine: str = "hybrid",
    embed: Embed | None = None,
    threshold: float | None = None,
) -> RetrievalKnowledgeBase:
    """The knowledge base of the file at `path`. ``hybrid`` needs `embed` (the intent model's
    ``embed``); without one it is ``lexical``. Raises ``KnowledgeFileError`` for a bad file and
    ``ValueError`` for an unknown engine."""
    if engine not in ENGINES:
        raise ValueError(
            f"unknown knowledge engine {engine!r} (choose one of: {', '.join(ENGINES)})"
        )
    kfile = load_knowledge(path)
    index = build_index(kfile, embed if engine == "hybrid" else None)
    return RetrievalKnowledgeBase(index, threshold=threshold)
