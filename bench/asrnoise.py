"""A phone-ASR noise model learned from what Whisper actually wrote on phone audio.

``nlu/data/ear_transcripts.jsonl`` holds sentences rendered through an 8 kHz G.711 leg and
decoded by the project's Whisper (``text`` vs ``ear_text``). Aligning the two (difflib, on
canonical characters) gives:

- the confusion table: for each written character, the characters Whisper wrote instead
  (价 -> 加, 在 -> 再 ...), and how often it dropped one or added one;
- the shares of substitutions, deletions and insertions among errors, and the share of
  substitutions that are (near-)homophones (same confusion-folded pinyin, ``nlu.features.fold``).

``NoiseModel.corrupt(text, rate, rng)`` then makes each character an error with probability
`rate` (the character error rate), split by those shares: a substitution draws from the
character's own confusions when Whisper confused it at least ``MIN_SEEN`` times, else a
near-homophone from the characters Whisper writes (never a random character); a deletion drops
it; an insertion adds a character Whisper tends to add. The espeak voices of that file are far
harder than people (CER ~0.65 there; a clean voice on 8 kHz ~0.06, ``docs`` speech notes), so
the *rate* is a parameter and the benchmark reports a phone level and a harder one.
"""

from __future__ import annotations

import difflib
import json
import random
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Final

from pypinyin import lazy_pinyin

from core.pinyin import fold
from core.text import canonical

EAR_FILE: Final = Path(__file__).resolve().parent.parent / "nlu" / "data" / "ear_transcripts.jsonl"
MIN_SEEN: Final = 2


def _chars(text: str) -> str:
    return "".join(c for c in canonical(text) if c.isalnum())


@lru_cache(maxsize=8192)
def _folded(ch: str) -> str:
    return fold(lazy_pinyin(ch)[0])


@dataclass
class NoiseModel:
    confusions: dict[str, Counter[str]] = field(default_factory=dict)
    inserted: Counter[str] = field(default_factory=Counter)
    by_sound: dict[str, list[str]] = field(default_factory=dict)  # folded pinyin -> chars
    shares: dict[str, float] = field(default_factory=dict)  # sub, del, ins; homophone
    measured_cer: float = 0.0

    def substitute(self, ch: str, rng: random.Random) -> str:
        seen = self.confusions.get(ch)
        if seen is not None and sum(seen.values()) >= MIN_SEEN:
            chars, weights = zip(*seen.items(), strict=True)
            return rng.choices(chars, weights)[0]
        near = [c for c in self.by_sound.get(_folded(ch), ()) if c != ch]
        return rng.choice(near) if near else ch

    def corrupt(self, text: str, rate: float, rng: random.Random) -> str:
        """`text` as Whisper might write it at character error rate `rate`."""
        p_sub = rate * self.shares["sub"]
        p_del = rate * self.shares["del"]
        p_ins = rate * self.shares["ins"]
        out: list[str] = []
        inserts = list(self.inserted) or ["的"]
        weights = [self.inserted[c] for c in inserts] if self.inserted else [1]
        for ch in text:
            u = rng.random()
            if not ch.isalnum() or u >= p_sub + p_del + p_ins:
                out.append(ch)
            elif u < p_sub:
                out.append(self.substitute(ch, rng))
            elif u < p_sub + p_del:
                continue
            else:
                out.extend((ch, rng.choices(inserts, weights)[0]))
        return "".join(out) or text


def _align(model: NoiseModel, written: str, heard: str, counts: Counter[str]) -> None:
    ops = difflib.SequenceMatcher(None, written, heard, autojunk=False).get_opcodes()
    for op, i1, i2, j1, j2 in ops:
        if op == "equal":
            counts["ok"] += i2 - i1
            continue
        pairs = min(i2 - i1, j2 - j1) if op == "replace" else 0
        for k in range(pairs):
            a, b = written[i1 + k], heard[j1 + k]
            model.confusions.setdefault(a, Counter())[b] += 1
            counts["sub"] += 1
            counts["homophone"] += _folded(a) == _folded(b)
        counts["del"] += max(0, (i2 - i1) - pairs)
        extra = heard[j1 + pairs : j2]
        counts["ins"] += len(extra)
        model.inserted.update(extra)


def learn(rows: Iterable[tuple[str, str]]) -> NoiseModel:
    """Learn the model from (written, heard) pairs."""
    model = NoiseModel()
    counts: Counter[str] = Counter()
    sounds: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for written_raw, heard_raw in rows:
        written, heard = _chars(written_raw), _chars(heard_raw)
        _align(model, written, heard, counts)
        for ch in heard:
            if "\u4e00" <= ch <= "\u9fff":
                sounds[_folded(ch)][ch] += 1
    errors = counts["sub"] + counts["del"] + counts["ins"]
    model.by_sound = {
        k: [c for c, n in v.most_common() if n >= MIN_SEEN] for k, v in sounds.items()
    }
    model.shares = {
        "sub": counts["sub"] / errors,
        "del": counts["del"] / errors,
        "ins": counts["ins"] / errors,
        "homophone": counts["homophone"] / max(1, counts["sub"]),
    }
    model.measured_cer = errors / max(1, counts["ok"] + counts["sub"] + counts["del"])
    return model


def load_model(path: Path = EAR_FILE) -> NoiseModel:
    """The model learned from the committed ear transcripts."""
    rows = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                rows.append((row["text"], row["ear_text"]))
    return learn(rows)
