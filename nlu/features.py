"""Sparse features: character n-grams plus toneless pinyin n-grams, TF-IDF weighted.

Implemented here (not with scikit-learn's vectorizer) so that inference needs only numpy and a
JSON vocabulary, and training and inference share one code path.

Pinyin tokens make ASR homophone errors ("在开会" / "再开会", "别再打" / "别在打") land on the
same features; a light fuzzy mapping (zh/ch/sh -> z/c/s, -ing/-eng -> -in/-en) covers southern
accents and Whisper's guesses. ``folded_ngrams`` adds a second, coarser layer of toneless pinyin
n-grams where every near-homophone pair Whisper confuses on 8 kHz phone audio is one symbol
(z/zh, c/ch, s/sh, n/l, f/h, an/ang, en/eng, in/ing: 价格 ~ 加格, 转人工 ~ 赚人东 keep sharing
features), so a model trained on transcripts of phone audio generalises across the swaps. Off by
default: a model saved without it loads and scores exactly as before.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from pypinyin import lazy_pinyin

from core.pinyin import fold  # shared with callflow.screening

BOS, EOS = "^", "$"  # never survive normalization, so they cannot collide with text
PINYIN_PREFIX = "p:"
FOLDED_PREFIX = "q:"


@dataclass(frozen=True, slots=True)
class FeatureConfig:
    char_ngrams: tuple[int, int] = (1, 3)
    pinyin_ngrams: tuple[int, int] = (1, 2)  # (0, 0) switches pinyin features off
    min_df: int = 2  # drops one-off n-grams: 3x fewer features, same accuracy
    folded_ngrams: tuple[int, int] = (0, 0)  # confusion-folded pinyin n-grams; (0, 0): off

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "char_ngrams": list(self.char_ngrams),
            "pinyin_ngrams": list(self.pinyin_ngrams),
            "min_df": self.min_df,
        }
        if self.folded_ngrams[1] > 0:
            data["folded_ngrams"] = list(self.folded_ngrams)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> FeatureConfig:
        def pair(key: str) -> tuple[int, int]:
            raw = data[key]
            assert isinstance(raw, list) and len(raw) == 2
            return int(raw[0]), int(raw[1])

        min_df = data.get("min_df", 1)
        assert isinstance(min_df, int)
        return cls(
            char_ngrams=pair("char_ngrams"),
            pinyin_ngrams=pair("pinyin_ngrams"),
            min_df=min_df,
            folded_ngrams=pair("folded_ngrams") if "folded_ngrams" in data else (0, 0),
        )


def _fuzzy(syllable: str) -> str:
    if syllable[:2] in ("zh", "ch", "sh"):
        syllable = syllable[0] + syllable[2:]
    if syllable.endswith(("ing", "eng")):
        syllable = syllable[:-1]
    return syllable


def _ngrams(units: Sequence[str], lo: int, hi: int, prefix: str = "") -> Iterable[str]:
    for n in range(lo, hi + 1):
        for i in range(len(units) - n + 1):
            gram = "".join(units[i : i + n]) if not prefix else " ".join(units[i : i + n])
            yield prefix + gram


def tokens(text: str, config: FeatureConfig) -> Counter[str]:
    """Count the feature tokens of an already normalized text."""
    counts: Counter[str] = Counter()
    if not text:
        return counts
    lo, hi = config.char_ngrams
    counts.update(_ngrams(list(text), lo, hi))
    if hi >= 2:  # boundary-anchored n-grams: "^好的", "吗$"
        padded = [BOS, *text, EOS]
        for n in range(max(lo, 2), hi + 1):
            counts.update(
                "".join(padded[i : i + n])
                for i in range(len(padded) - n + 1)
                if i == 0 or i + n == len(padded)
            )
    plo, phi = config.pinyin_ngrams
    flo, fhi = config.folded_ngrams
    if phi > 0 or fhi > 0:
        raw = lazy_pinyin(text)
        if phi > 0:
            counts.update(_ngrams([_fuzzy(s) for s in raw], plo, phi, PINYIN_PREFIX))
        if fhi > 0:
            counts.update(_ngrams([fold(s) for s in raw], flo, fhi, FOLDED_PREFIX))
    return counts


class Vectorizer:
    """Vocabulary + IDF; turns normalized texts into L2-normalized sublinear TF-IDF rows."""

    def __init__(self, config: FeatureConfig, vocabulary: Sequence[str], idf: np.ndarray) -> None:
        self.config = config
        self.vocabulary = list(vocabulary)
        self.index = {tok: i for i, tok in enumerate(self.vocabulary)}
        self.idf = idf.astype(np.float32)

    @classmethod
    def fit(cls, texts: Sequence[str], config: FeatureConfig) -> Vectorizer:
        df: Counter[str] = Counter()
        for text in texts:
            df.update(tokens(text, config).keys())
        vocab = sorted(tok for tok, n in df.items() if n >= config.min_df)
        n_docs = len(texts)
        idf = np.array([math.log((1 + n_docs) / (1 + df[t])) + 1.0 for t in vocab])
        return cls(config, vocab, idf)

    def row(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Return (indices, values) of one text's feature row."""
        pairs = [
            (self.index[tok], 1.0 + math.log(n))
            for tok, n in tokens(text, self.config).items()
            if tok in self.index
        ]
        if not pairs:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        idx = np.fromiter((i for i, _ in pairs), dtype=np.int64, count=len(pairs))
        tf = np.fromiter((v for _, v in pairs), dtype=np.float32, count=len(pairs))
        vals = tf * self.idf[idx]
        norm = float(np.linalg.norm(vals))
        return idx, vals / norm if norm > 0 else vals

    def matrix(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """CSR parts (data, indices, indptr) for a batch of texts (training only)."""
        data: list[np.ndarray] = []
        indices: list[np.ndarray] = []
        indptr = [0]
        for text in texts:
            idx, vals = self.row(text)
            order = np.argsort(idx)
            indices.append(idx[order])
            data.append(vals[order])
            indptr.append(indptr[-1] + len(idx))
        return (
            np.concatenate(data) if data else np.zeros(0, np.float32),
            np.concatenate(indices) if indices else np.zeros(0, np.int64),
            np.array(indptr, dtype=np.int64),
        )
