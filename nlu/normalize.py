"""Text normalization shared by training and inference.

ASR transcripts arrive with traditional characters, full-width forms, punctuation, and leading
hesitation sounds ("喂", "嗯", "呃"); none of that carries intent. Normalization: traditional ->
simplified, NFKC (full-width -> half-width), lower case, keep only letters and digits, strip
leading fillers, squeeze character runs ("好好好好" -> "好好").
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any

MAX_CHARS = 256  # an utterance longer than this is truncated; intent lives in the first words

# Hesitation sounds dropped at the start of an utterance (only when something remains, so a bare
# "嗯嗯" stays an affirmation). 呃 carries nothing anywhere.
_LEADING_FILLERS = re.compile(r"^(?:那个|就是说|喂|嗯|呃|哦|噢|喔|诶|欸|哎|唉|啊|呀|恩)+")
_ANYWHERE_FILLERS = re.compile(r"呃+")
_RUNS = re.compile(r"(.)\1{2,}")


@lru_cache(maxsize=1)
def _t2s() -> Any:
    from opencc import OpenCC  # local import: opencc loads its dictionaries on first use

    return OpenCC("t2s")


def _keep(ch: str) -> bool:
    cat = unicodedata.category(ch)
    return cat[0] in "LN"


def to_simplified(text: str) -> str:
    return str(_t2s().convert(text))


def simplify(text: str) -> str:
    """NFKC (full-width -> half-width), traditional -> simplified, lower case; keeps punctuation."""
    return to_simplified(unicodedata.normalize("NFKC", text[: MAX_CHARS * 2])).lower()


def normalize(text: str) -> str:
    """Return the canonical form used for features and rules ('' when nothing is left)."""
    text = simplify(text)
    text = "".join(ch for ch in text if _keep(ch))
    text = _ANYWHERE_FILLERS.sub("", text)
    stripped = _LEADING_FILLERS.sub("", text)
    if stripped:
        text = stripped
    text = _RUNS.sub(r"\1\1", text)
    return text[:MAX_CHARS]
