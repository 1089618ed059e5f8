"""The one text normaliser: the canonical form of Chinese text in callbot.

``canonical(text)``: NFKC (full-width letters and digits -> ASCII, compatibility ideographs ->
unified ones), traditional -> simplified characters (OpenCC ``t2s``; Whisper often answers in
traditional ones), ASCII clause punctuation -> Chinese, no spaces next to Chinese characters,
runs of whitespace squeezed, trimmed. It is idempotent.

Where it is applied, once:

- the recognizer engines (``speech.asr.whisper``, ``speech.asr.vosk``) apply it to every
  transcript, so text on the call path is already canonical when it reaches the NLU;
- the NLU applies it only to text that did not come from the recognizer: ``main.py nlu
  classify`` / ``nlu eval`` input, training data, a script's custom-intent examples.

One OpenCC converter is loaded per conversion (``t2s`` here, ``s2t`` for training-data
augmentation) and cached for the life of the process.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any, Final, Literal

Conversion = Literal["t2s", "s2t"]

_CJK: Final = r"\u3400-\u9fff\uf900-\ufaff"
_ZH_PUNCT: Final = "，。？！；：、“”‘’（）《》…—"
_SPACE_NEXT_TO_CJK: Final = re.compile(rf"(?<=[{_CJK}{_ZH_PUNCT}])\s+|\s+(?=[{_CJK}{_ZH_PUNCT}])")
_SPACES: Final = re.compile(r"\s+")
_ASCII_TO_ZH_PUNCT: Final = str.maketrans({",": "，", "?": "？", "!": "！", ";": "；", ":": "："})


@lru_cache(maxsize=2)
def _converter(conversion: Conversion) -> Any:
    """The OpenCC converter for one conversion, loaded on first use (~10 ms, pure Python)."""
    from opencc import OpenCC  # opencc-python-reimplemented

    return OpenCC(conversion)


def to_simplified(text: str) -> str:
    """Traditional -> simplified Chinese characters; everything else unchanged."""
    return str(_converter("t2s").convert(text)) if text else text


def to_traditional(text: str) -> str:
    """Simplified -> traditional Chinese characters (to imitate a recognizer's output)."""
    return str(_converter("s2t").convert(text)) if text else text


def canonical(text: str) -> str:
    """The canonical form of `text` (see the module docstring)."""
    text = to_simplified(unicodedata.normalize("NFKC", text))
    text = text.translate(_ASCII_TO_ZH_PUNCT)
    text = _SPACE_NEXT_TO_CJK.sub("", text)
    return _SPACES.sub(" ", text).strip()
