"""Load the labelled data, map it to the taxonomy, and split it deterministically.

The held-out part holds real dataset utterances only (never the hand-written extra examples),
is stratified by intent, seeded, and is split by *normalized* text, so two rows that normalize
to the same string always land on the same side. Extra examples whose normalized text appears
in the held-out part are removed from training.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nlu.base import INTENTS
from nlu.prepare import raw_model_text
from nlu.training.taxonomy import LABEL_TO_INTENT

DATA_FILE = "telemarketing_intent_cn.train.jsonl"
DATA_ENV = "NLU_DATA_PATH"
_REPO = Path(__file__).resolve().parent.parent.parent
EXTRA_EXAMPLES = _REPO / "nlu" / "data" / "extra_examples.jsonl"  # committed data stays in nlu/data
# Searched in order when NLU_DATA_PATH is unset: vendored copies first, then a checkout's
# sibling "shared/data" folder.
DATA_CANDIDATES = (
    _REPO / "data" / DATA_FILE,
    _REPO / "nlu" / "data" / DATA_FILE,
    _REPO / "shared" / "data" / DATA_FILE,
    _REPO.parent / "shared" / "data" / DATA_FILE,
)

DEFAULT_SEED = 20261121
DEFAULT_HELDOUT = 0.2


@dataclass(frozen=True, slots=True)
class Example:
    text: str  # as written / transcribed
    intent: str
    source: str  # "data" or "extra"


@dataclass(frozen=True, slots=True)
class Split:
    train: list[Example]  # dataset train part + extra examples
    heldout: list[Example]  # real dataset utterances only


def find_data_path(path: str | os.PathLike[str] | None = None) -> Path:
    """Resolve the dataset file: explicit path, then $NLU_DATA_PATH, then DATA_CANDIDATES."""
    if path is None and os.environ.get(DATA_ENV):
        path = os.environ[DATA_ENV]
    if path is not None:
        found = Path(path)
        if not found.is_file():
            raise FileNotFoundError(f"intent data not found at {found}")
        return found
    for candidate in DATA_CANDIDATES:
        if candidate.is_file():
            return candidate
    tried = ", ".join(str(c) for c in DATA_CANDIDATES)
    raise FileNotFoundError(f"{DATA_FILE} not found (set {DATA_ENV}); tried {tried}")


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_jsonl(path: Path) -> Iterable[dict[str, str]]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def load_labelled(path: Path) -> list[Example]:
    """Dataset rows mapped to intents; dropped labels are skipped, unknown labels raise."""
    out: list[Example] = []
    for row in _read_jsonl(path):
        label = row["label"]
        if label not in LABEL_TO_INTENT:
            raise KeyError(
                f"dataset label {label!r} is not in nlu.training.taxonomy.LABEL_TO_INTENT"
            )
        intent = LABEL_TO_INTENT[label]
        if intent is not None and raw_model_text(row["text"]):
            out.append(Example(row["text"], intent, "data"))
    return out


def load_extra(path: Path = EXTRA_EXAMPLES) -> list[Example]:
    out: list[Example] = []
    for row in _read_jsonl(path):
        if row["intent"] not in INTENTS:
            raise ValueError(f"extra example with unknown intent {row['intent']!r}")
        out.append(Example(row["text"], row["intent"], "extra"))
    return out


def split_heldout(
    examples: Sequence[Example], fraction: float = DEFAULT_HELDOUT, seed: int = DEFAULT_SEED
) -> tuple[list[Example], list[Example]]:
    """Stratified, seeded (train, heldout) split of real examples, grouped by normalized text."""
    groups: dict[str, list[Example]] = defaultdict(list)
    for ex in examples:
        groups[raw_model_text(ex.text)].append(ex)
    by_intent: dict[str, list[str]] = defaultdict(list)
    for key in sorted(groups):
        by_intent[groups[key][0].intent].append(key)
    rng = random.Random(seed)
    held: set[str] = set()
    for intent in sorted(by_intent):
        keys = by_intent[intent]
        rng.shuffle(keys)
        n_held = round(len(keys) * fraction) if len(keys) >= 2 else 0
        held.update(keys[:n_held])
    train = [ex for ex in examples if raw_model_text(ex.text) not in held]
    heldout = [ex for ex in examples if raw_model_text(ex.text) in held]
    return train, heldout


def build_split(
    data_path: str | os.PathLike[str] | None = None,
    *,
    fraction: float = DEFAULT_HELDOUT,
    seed: int = DEFAULT_SEED,
    extra_path: Path = EXTRA_EXAMPLES,
) -> Split:
    real = load_labelled(find_data_path(data_path))
    train, heldout = split_heldout(real, fraction, seed)
    held_keys = {raw_model_text(ex.text) for ex in heldout}
    extra = [ex for ex in load_extra(extra_path) if raw_model_text(ex.text) not in held_keys]
    return Split(train=train + extra, heldout=heldout)
