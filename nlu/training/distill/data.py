"""Training sets for the teacher and the student, built from the split's train part only.

- teacher set: labelled train utterances (real + hand-written) and one ASR/dialect variant each;
- transfer set (what the teacher labels for the student): the teacher set, more variants,
  unlabelled real utterances (dataset rows whose label the taxonomy drops: real callee speech
  with no product intent), and pairs of train utterances joined as one turn ("喂你好多少钱").

Nothing here reads the held-out utterances; unlabelled rows that normalize to a held-out text
are removed as well.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from nlu.base import INTENTS
from nlu.prepare import raw_model_text
from nlu.training.augment import Augmenter
from nlu.training.dataset import Split
from nlu.training.taxonomy import LABEL_TO_INTENT

UNLABELLED = -1


@dataclass
class TextSet:
    texts: list[str]  # normalized
    labels: list[int]  # index into INTENTS, or UNLABELLED

    def add(self, text: str, label: int) -> None:
        norm = raw_model_text(text)
        if norm:
            self.texts.append(norm)
            self.labels.append(label)


def teacher_set(split: Split, augmenter: Augmenter, variants: int = 1) -> TextSet:
    out = TextSet([], [])
    for ex in split.train:
        label = INTENTS.index(ex.intent)
        out.add(ex.text, label)
        for v in augmenter.variants(ex.text, variants):
            out.add(v, label)
    return out


def dropped_rows(data_path: Path, split: Split) -> list[str]:
    """Real utterances whose dataset label is dropped from the taxonomy (unlabelled)."""
    held = {raw_model_text(ex.text) for ex in split.heldout}
    out = []
    with data_path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            row = json.loads(line)
            if (
                LABEL_TO_INTENT.get(row["label"], "x") is None
                and raw_model_text(row["text"]) not in held
            ):
                out.append(row["text"])
    return out


def transfer_set(
    split: Split,
    data_path: Path,
    augmenter: Augmenter,
    *,
    variants: int = 3,
    pairs: int = 3000,
    seed: int = 7,
) -> TextSet:
    rng = random.Random(seed)
    out = TextSet([], [])
    for ex in split.train:
        label = INTENTS.index(ex.intent)
        out.add(ex.text, label)
        for v in augmenter.variants(ex.text, variants):
            out.add(v, UNLABELLED)  # the teacher's soft label decides what the noise did
    for text in dropped_rows(data_path, split):
        out.add(text, UNLABELLED)
        for v in augmenter.variants(text, 1):
            out.add(v, UNLABELLED)
    train_texts = [ex.text for ex in split.train]
    for _ in range(pairs):
        a, b = rng.sample(train_texts, 2)
        out.add(a + b, UNLABELLED)
    return out
