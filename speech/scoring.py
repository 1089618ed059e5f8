"""Comparing transcripts: punctuation-free keys, edit distance, character error rate.

Normalisation itself (NFKC, traditional -> simplified) is ``core.text``; this module only
builds comparison keys on top of it, for repeat detection and for measuring recognizers.
"""

from __future__ import annotations

import re
import unicodedata

from core.text import to_simplified

_PUNCT_OR_SPACE = re.compile(r"[\s\W_]+", re.UNICODE)


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
