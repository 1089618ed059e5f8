"""Chinese text normalization for the ASR side: traditional -> simplified, width, punctuation
and spacing, CER. (The TTS side, numbers read aloud, is ``speech.tts.normalize``; dialect words
-> Mandarin is ``speech.dialect``.)
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any

# --- ASR output ------------------------------------------------------------------------------

_CJK = r"\u3400-\u9fff\uf900-\ufaff"
_ZH_PUNCT = "，。？！；：、“”‘’（）《》…—"
_SPACE_NEXT_TO_CJK = re.compile(rf"(?<=[{_CJK}{_ZH_PUNCT}])\s+|\s+(?=[{_CJK}{_ZH_PUNCT}])")
_SPACES = re.compile(r"\s+")
_ASCII_TO_ZH_PUNCT = str.maketrans({",": "，", "?": "？", "!": "！", ";": "；", ":": "："})
_PUNCT_OR_SPACE = re.compile(r"[\s\W_]+", re.UNICODE)


@lru_cache(maxsize=1)
def _t2s_converter() -> Any:
    from opencc import OpenCC  # opencc-python-reimplemented: pure python, loads in ~10 ms

    return OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Traditional -> simplified Chinese (Whisper often answers in traditional)."""
    return str(_t2s_converter().convert(text)) if text else text


def normalize_transcript(text: str) -> str:
    """Canonical form of an ASR transcript for NLU: simplified, NFKC width, Chinese
    punctuation, no spaces next to Chinese characters, trimmed."""
    text = unicodedata.normalize("NFKC", to_simplified(text))
    text = text.translate(_ASCII_TO_ZH_PUNCT)
    text = _SPACE_NEXT_TO_CJK.sub("", text)
    return _SPACES.sub(" ", text).strip()


def strip_punct(text: str) -> str:
    """Drop punctuation and whitespace, lowercase Latin (for matching and CER)."""
    return _PUNCT_OR_SPACE.sub("", unicodedata.normalize("NFKC", text)).lower()


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance between two strings (characters)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate after t2s and punctuation stripping (can exceed 1.0)."""
    ref = strip_punct(to_simplified(reference))
    hyp = strip_punct(to_simplified(hypothesis))
    if not ref:
        return 0.0 if not hyp else 1.0
    return edit_distance(ref, hyp) / len(ref)
