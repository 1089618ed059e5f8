"""ASR-noise and dialect augmentation of training utterances (training only, pure Python).

Whisper on 8 kHz phone audio makes a few kinds of error that the written dataset never shows:
homophone swaps (在/再, 是/事), dropped or repeated characters, traditional characters, and
hesitation fillers (那个, 就是, 嗯). Callees also speak dialect-flavoured Mandarin. ``Augmenter``
turns one utterance into seeded noisy variants; it is applied to the *training* part only, so
the held-out split stays the real, untouched utterances.

Homophones are drawn from characters seen in the training texts (the same toneless pinyin),
so a swap produces characters Whisper would plausibly output, not rare ones.
"""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence

from pypinyin import lazy_pinyin

from core.text import to_traditional

FILLERS: tuple[str, ...] = ("那个", "就是", "嗯", "呃", "啊", "这个", "就是说", "哎", "喂")
TAIL_FILLERS: tuple[str, ...] = ("啊", "呀", "吧", "哈", "嘛", "呢", "哦")

# Word-level substitutions that imitate dialect phrasing in Mandarin transcripts:
# Cantonese (咩, 唔, 系, 佢, 哋), Sichuanese (啥子, 要得, 晓得, 莫), Northeastern (咋, 嘎哈, 整,
# 啥玩意), Wu (侬, 阿拉, 覅, 晓得). Each entry: Mandarin -> dialect options.
DIALECT: dict[str, tuple[str, ...]] = {
    "什么": ("啥", "啥子", "咩", "啥玩意"),
    "不要": ("唔要", "覅", "甭"),
    "不用": ("唔使", "甭", "不消"),
    "没有": ("冇", "没得", "没"),
    "知道": ("晓得", "知"),
    "你们": ("你哋", "恁", "侬"),
    "我们": ("我哋", "阿拉", "俺们"),
    "是不是": ("系唔系", "是不"),
    "可以": ("得", "要得", "中", "行"),
    "好的": ("要得", "中", "好嘞", "得"),
    "怎么": ("咋", "点样", "哪门"),
    "干什么": ("嘎哈", "做咩", "搞啥子"),
    "这个": ("嗰个", "这", "迭个"),
    "那个": ("嗰个", "那"),
    "不是": ("唔系", "不系"),
    "现在": ("而家", "这会儿", "现时"),
    "明天": ("听日", "明儿", "明个"),
    "别": ("莫", "甭", "唔好"),
    "我": ("俺", "偶"),
    "他": ("佢",),
    "的": ("嘅", "滴"),
}
_DIALECT_RE = re.compile("|".join(sorted(map(re.escape, DIALECT), key=len, reverse=True)))

_HAN = re.compile(r"[\u4e00-\u9fff]")
_PUNCT = "，。？！、,.?! "


def homophone_table(texts: Iterable[str], min_count: int = 3) -> dict[str, list[str]]:
    """toneless pinyin -> characters seen at least ``min_count`` times with that reading."""
    counts: Counter[str] = Counter(ch for text in texts for ch in text if _HAN.match(ch))
    table: dict[str, list[str]] = defaultdict(list)
    for ch, n in counts.most_common():
        if n >= min_count:
            table[lazy_pinyin(ch)[0]].append(ch)
    return {py: chars for py, chars in table.items() if len(chars) > 1}


class Augmenter:
    """Seeded generator of ASR-like and dialect variants of an utterance."""

    def __init__(self, homophones: dict[str, list[str]], seed: int = 0) -> None:
        self.homophones = homophones
        self.rng = random.Random(seed)
        self.ops: tuple[Callable[[str], str], ...] = (
            self.homophone,
            self.homophone,
            self.drop,
            self.repeat,
            self.traditional,
            self.filler,
            self.dialect,
            self.punctuation,
        )

    @classmethod
    def from_texts(cls, texts: Sequence[str], seed: int = 0) -> Augmenter:
        return cls(homophone_table(texts), seed)

    # -- single operations ---------------------------------------------------------------
    def homophone(self, text: str) -> str:
        chars = list(text)
        spots = [i for i, ch in enumerate(chars) if _HAN.match(ch)]
        if not spots:
            return text
        n_swaps = max(1, round(len(spots) * self.rng.uniform(0.05, 0.2)))
        for i in self.rng.sample(spots, min(n_swaps, len(spots))):
            options = self.homophones.get(lazy_pinyin(chars[i])[0], [])
            options = [ch for ch in options[:12] if ch != chars[i]]
            if options:
                chars[i] = self.rng.choice(options)
        return "".join(chars)

    def drop(self, text: str) -> str:
        if len(text) <= 3:
            return text
        i = self.rng.randrange(len(text))
        return text[:i] + text[i + 1 :]

    def repeat(self, text: str) -> str:
        if not text:
            return text
        i = self.rng.randrange(len(text))
        return text[: i + 1] + text[i] + text[i + 1 :]

    def traditional(self, text: str) -> str:
        return to_traditional(text)

    def filler(self, text: str) -> str:
        roll = self.rng.random()
        if roll < 0.5:
            return self.rng.choice(FILLERS) + text
        if roll < 0.75:
            return text + self.rng.choice(TAIL_FILLERS)
        i = self.rng.randrange(len(text) + 1)
        return text[:i] + self.rng.choice(("嗯", "呃")) + text[i:]

    def dialect(self, text: str) -> str:
        found = list(_DIALECT_RE.finditer(text))
        if not found:
            return text
        match = self.rng.choice(found)
        word = self.rng.choice(DIALECT[match.group(0)])
        return text[: match.start()] + word + text[match.end() :]

    def punctuation(self, text: str) -> str:
        if self.rng.random() < 0.5:
            return "".join(ch for ch in text if ch not in _PUNCT)
        return text + self.rng.choice(("。", "？", "！", "，", "..."))

    # -- combinations ----------------------------------------------------------------------
    def variant(self, text: str, max_ops: int = 3) -> str:
        """One variant: 1..max_ops random operations, never the unchanged text if avoidable."""
        out = text
        for _ in range(3):
            for op in self.rng.sample(self.ops, self.rng.randint(1, max_ops)):
                out = op(out)
            if out != text:
                break
        return out

    def variants(self, text: str, n: int, max_ops: int = 3) -> list[str]:
        """Up to ``n`` distinct variants different from ``text``."""
        seen = {text}
        out: list[str] = []
        for _ in range(n * 3):
            candidate = self.variant(text, max_ops)
            if candidate.strip() and candidate not in seen:
                seen.add(candidate)
                out.append(candidate)
            if len(out) == n:
                break
        return out
