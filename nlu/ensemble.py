"""The student and the linear model together: their intent probabilities averaged.

The two make different mistakes: the student reads meaning ("我这边暂时用不上" ~ deny) but is
thrown by ASR homophones; the char/pinyin linear model matches sounds ("再/在", "是/事") but
not paraphrase. On the held-out split the plain average (weight fixed at 0.5, not tuned) beats
both, clean and with ASR-like noise; it costs the linear model's ~0.3 ms on top of the student.
Few-shot custom intents use the student's embedding (``embed``).

Rows are cached per model text (``nlu.textcache``, ``cache_size`` texts, 0: off): a reply heard
before ("好的", "多少钱") skips the student's pass (~2 ms fixed + ~0.45 ms per token here).

Cascade (``cascade_tau``/``cascade_margin``; ``None``: off): the linear model runs first, and
when it alone is decisive (top probability >= tau and top-1 minus top-2 >= margin) the student's
pass is skipped and the row is the linear model's: the ensemble's average with the student's
row taken to agree with the linear one, i.e. what the ensemble says when the two agree, which on
decisive inputs they almost always do (agreement and the thresholds: ``nlu.training.cascade``,
chosen on a dev split of the training data). Such a row is always acted on by the clarification
policy (tau and margin above its 0.6 / 0.15), as the full ensemble's row then nearly always is.
``skipped`` / ``scored`` count the texts that did and did not need the student (statistics:
not locked, so approximate when several threads classify at once).

Poorly heard transcripts (``linear_only_below``; ``None``: off): a transcript the recognizer
heard with a confidence (``context["asr_confidence"]``) under this is read by a linear model
alone: ``heard_linear`` (the manifest's ``heard_linear_dir``, ``linear-heard``: trained with
the ear transcripts weighted more, ``nlu.training.train.HEARD_CONFIG``), else the ensemble's
own. The student learned from written text and reads a garbled transcript (傲哥，你别走 for
好的，你接着往下说) as confidently as a clean one; the linear models also learned from what the
recognizer heard of their training texts. On the ear transcripts of sentences training left out
(``nlu/data/ear_transcripts.jsonl``, split "test": 218, confidences 0.05-0.7), ``linear-ear``
alone was right on 0.436 of them and ``linear-heard`` on 0.477, against the ensemble's 0.385,
in every confidence quartile; on written text (held-out split) the ensemble is better (macro-F1
0.8921 against 0.8664 and 0.8553). Such a transcript also skips the student's pass (~0.45 ms
per token).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nlu.base import IntentResult
from nlu.encoder import EncoderIntentClassifier
from nlu.linear import LinearIntentClassifier
from nlu.postprocess import decide, decide_batch
from nlu.textcache import DEFAULT_SIZE, RowCache


def decisive_rows(probs: np.ndarray, tau: float, margin: float) -> np.ndarray:
    """Per row of ``probs`` (n, classes): top >= ``tau`` and top-1 minus top-2 >= ``margin``."""
    top2 = np.sort(np.atleast_2d(probs), axis=1)[:, -2:]
    return np.asarray((top2[:, 1] >= tau) & (top2[:, 1] - top2[:, 0] >= margin))


class EnsembleIntentClassifier:
    """Implements ``nlu.base.IntentClassifier``: (1-w) x student + w x linear probabilities."""

    name = "student+linear"

    def __init__(
        self,
        student: EncoderIntentClassifier,
        linear: LinearIntentClassifier,
        *,
        linear_weight: float = 0.5,
        min_confidence: float | None = None,
        cache_size: int = DEFAULT_SIZE,
        cascade_tau: float | None = None,
        cascade_margin: float = 0.0,
        linear_only_below: float | None = None,
        heard_linear: LinearIntentClassifier | None = None,
    ) -> None:
        if not 0.0 <= linear_weight <= 1.0:
            raise ValueError("linear_weight must be within [0, 1]")
        if cascade_tau is not None and not (0.0 < cascade_tau <= 1.0 and cascade_margin >= 0.0):
            raise ValueError("cascade_tau must be within (0, 1] and cascade_margin >= 0")
        if linear_only_below is not None and not 0.0 <= linear_only_below <= 1.0:
            raise ValueError("linear_only_below must be within [0, 1]")
        for model in (m for m in (linear, heard_linear) if m is not None):
            missing = set(student.classes) - set(model.classes)
            if missing:
                raise ValueError(f"linear model lacks intents {sorted(missing)}")
        self.student, self.linear = student, linear
        self.linear_weight = linear_weight
        self.classes = student.classes
        self.min_confidence = student.min_confidence if min_confidence is None else min_confidence
        self.manifest = student.manifest
        self.intent_centroids = student.intent_centroids
        self.cache = RowCache(cache_size)
        self.cascade_tau, self.cascade_margin = cascade_tau, cascade_margin
        self.skipped = 0
        self.scored = 0
        self.linear_only_below = linear_only_below
        self._linear_rows = LinearView(linear, self.classes, self.min_confidence)
        self.heard_poorly = (
            LinearView(heard_linear, self.classes, self.min_confidence)
            if heard_linear is not None
            else self._linear_rows
        )

    def _compute(self, normalized: Sequence[str]) -> np.ndarray:
        """Linear rows for all texts; the student's pass (one batch) over the undecided ones."""
        rows = self._linear_rows.probabilities_batch(normalized)
        todo = np.ones(len(rows), dtype=bool)
        if self.cascade_tau is not None:
            todo = ~decisive_rows(rows, self.cascade_tau, self.cascade_margin)
        self.skipped += int((~todo).sum())
        self.scored += int(todo.sum())
        if todo.any():
            student = self.student.probabilities_batch(
                [n for n, t in zip(normalized, todo, strict=True) if t]
            )
            w = self.linear_weight
            rows[todo] = (1.0 - w) * student + w * rows[todo]
        return rows

    def probabilities(self, normalized: str) -> np.ndarray:
        """Intent probabilities (read-only row) for one model text."""
        return np.asarray(self.cache.rows([normalized], self._compute)[0])

    def probabilities_batch(self, normalized: Sequence[str]) -> np.ndarray:
        return self.cache.rows(normalized, self._compute)

    def embed(self, normalized: str) -> np.ndarray:
        return self.student.embed(normalized)

    def for_asr_confidence(self, confidence: float) -> EnsembleIntentClassifier | LinearView:
        """The linear model alone for a transcript heard under ``linear_only_below``, else
        the ensemble (``nlu.postprocess.heard_model``)."""
        below = self.linear_only_below
        return self.heard_poorly if below is not None and confidence < below else self

    def classify(self, text: str, context: Mapping[str, Any] | None = None) -> IntentResult:
        return decide(text, self, context)

    def classify_batch(
        self, texts: Sequence[str], context: Mapping[str, Any] | None = None
    ) -> list[IntentResult]:
        return decide_batch(texts, self, context)


class LinearView:
    """The ensemble's linear model alone, in the ensemble's class order and threshold."""

    def __init__(
        self, linear: LinearIntentClassifier, classes: Sequence[str], min_confidence: float
    ) -> None:
        self.linear = linear
        self.classes = tuple(classes)
        self.min_confidence = min_confidence
        self._order = np.array([linear.classes.index(c) for c in classes])

    def probabilities(self, normalized: str) -> np.ndarray:
        return np.asarray(self.linear.probabilities(normalized)[self._order])

    def probabilities_batch(self, normalized: Sequence[str]) -> np.ndarray:
        if not normalized:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        return np.stack([self.probabilities(n) for n in normalized])
