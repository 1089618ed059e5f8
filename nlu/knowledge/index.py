"""The retrieval index of one knowledge file: lexical rows and, optionally, sentence embeddings.

Each entry contributes its questions and (down-weighted) its answer as documents. A query's
score for an entry is its best document's similarity, so one close paraphrase is enough.

- Lexical: TF-IDF (scikit-learn's ``TfidfVectorizer``, sublinear tf) over the intent model's
  own features (``nlu.features.tokens``): character 1-3-grams, toneless pinyin 1-2-grams and
  confusion-folded pinyin 1-3-grams, so a homophone the recognizer wrote (加格 for 价格, 是不
  for 试不) still shares features with the written question.
- Dense: the intent model's centred, unit sentence embedding (``embed``: the int8 student's
  mean-pooled encoder output, ``nlu.encoder.EncoderIntentClassifier.embed``); cosine.

Text goes through ``nlu.prepare.model_text`` (fillers, case, punctuation) on both sides.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from nlu.features import FeatureConfig, tokens
from nlu.prepare import model_text, spoken_mandarin

from .file import KnowledgeFile

Embed = Callable[[str], np.ndarray]  # model_text -> centred unit vector

FEATURES: Final = FeatureConfig(
    char_ngrams=(1, 3), pinyin_ngrams=(1, 2), min_df=1, folded_ngrams=(1, 3)
)
ANSWER_WEIGHT: Final = 0.6  # an answer's words count, less than a question's


# The scaffolding of a question, which says that something is asked but not what: polite
# openers, pronouns, modal frames and sentence-final particles. Left in, "有没有体验版" matches
# "有没有优惠" on its frame; taken out of the lexical text (never out of the embedded text), the
# content words decide. Multi-character frames go anywhere; particles only at the end.
_FRAMES: Final = re.compile(
    "请问|问一下|问下|想问|想了解|了解一下|我想|你们|我们|咱们|你这|这个|那个|一下|"
    "有没有|有木有|能不能|可不可以|可以吗|是不是|行不行|好不好|会不会|要不要|怎么样|"
    "可以|的话|的"
)
_FINAL_PARTICLES: Final = re.compile("(?:吗|呢|吧|呀|啊|哦|嘛|么|啦|不|没有|没|了)+$")
_A_NOT_A: Final = re.compile(r"(.)[不没]\1")  # 贵不贵 -> 贵, 难不难 -> 难: the content stays


def lexical_text(text: str) -> str:
    """A ``model_text`` without its question scaffolding (the text itself when nothing is left)."""
    stripped = _FRAMES.sub("", _FINAL_PARTICLES.sub("", _A_NOT_A.sub(r"\1", text)))
    return stripped or text


def analyze(text: str) -> list[str]:
    """The feature tokens of a ``model_text`` (the vectorizer's analyzer)."""
    return list(tokens(lexical_text(text), FEATURES).elements())


@dataclass(frozen=True, slots=True)
class Doc:
    entry: int  # index into the file's entries
    text: str  # model_text
    weight: float


def prepared(text: str) -> str:
    """Written text as queries are prepared (safe dialect words mapped, ``model_text``)."""
    return model_text(spoken_mandarin(text, {"dialect": None}))


def documents(kfile: KnowledgeFile) -> list[Doc]:
    docs: list[Doc] = []
    for i, e in enumerate(kfile.entries):
        docs.extend(Doc(i, t, 1.0) for t in (prepared(q) for q in e.questions) if t)
        answer = prepared(e.answer)
        if answer:
            docs.append(Doc(i, answer, ANSWER_WEIGHT))
    return docs


class Index:
    """Per-entry lexical and dense similarities of a query (``lexical``, ``dense``)."""

    def __init__(self, kfile: KnowledgeFile, embed: Embed | None = None) -> None:
        self.kfile = kfile
        docs = documents(kfile)
        self.n_entries = len(kfile.entries)
        self._entry_of = np.array([d.entry for d in docs], dtype=np.int64)
        self._weights = np.array([d.weight for d in docs], dtype=np.float32)
        self.vectorizer = TfidfVectorizer(analyzer=analyze, sublinear_tf=True, norm="l2")
        # features x documents, so a query's few features select rows (no per-query vectorizer)
        matrix = self.vectorizer.fit_transform([d.text for d in docs])
        self._by_feature = matrix.T.tocsr().astype(np.float32)
        self._vocabulary: dict[str, int] = self.vectorizer.vocabulary_
        self._idf = self.vectorizer.idf_.astype(np.float32)
        self.embed = embed
        self._dense: np.ndarray | None = None
        if embed is not None:
            self._dense = np.stack([embed(d.text) for d in docs]).astype(np.float32)

    def _per_entry(self, doc_scores: np.ndarray) -> np.ndarray:
        out = np.full(self.n_entries, -1.0, dtype=np.float32)
        np.maximum.at(out, self._entry_of, doc_scores * self._weights)
        return out

    def lexical(self, text: str) -> np.ndarray:
        """Best TF-IDF cosine per entry of a ``model_text`` (0 when nothing is shared)."""
        counts = Counter(analyze(text))
        known = [(self._vocabulary[t], n) for t, n in counts.items() if t in self._vocabulary]
        if not known:
            return np.zeros(self.n_entries, dtype=np.float32)
        idx = np.array([i for i, _ in known], dtype=np.int64)
        weights = (1.0 + np.log([n for _, n in known])).astype(np.float32) * self._idf[idx]
        weights /= np.linalg.norm(weights)  # the vectorizer's sublinear tf-idf, l2 row
        doc_scores = self._by_feature[idx].T @ weights
        return self._per_entry(np.asarray(doc_scores, dtype=np.float32).ravel())

    def dense(self, text: str) -> np.ndarray:
        """Best embedding cosine per entry (zeros without an embedder)."""
        if self._dense is None or self.embed is None:
            return np.zeros(self.n_entries, dtype=np.float32)
        return self._per_entry(self._dense @ self.embed(text).astype(np.float32))

    def texts(self) -> Sequence[str]:
        return [e.answer for e in self.kfile.entries]
