"""From canonical text to what the intent model, the rules and the slot extractors read.

Normalisation (NFKC, traditional -> simplified, punctuation) belongs to ``core.text`` and
happens once, before text reaches a classifier: the recognizer applies it to every transcript
on the call path, and text from outside the call path (``main.py nlu classify`` / ``eval``,
training data, custom-intent examples) goes through ``core.text.canonical`` where it enters
(``raw_model_text`` here, ``nlu.cli``). So ``classify(text, context)`` takes canonical text.

What this module does on top is featurisation, not normalisation:

- ``spoken_mandarin``: a caller's dialect words -> Mandarin (``core.dialect``), when the
  context names the caller's dialect (``context["dialect"]``, see the function);
- ``model_text``: lower case, letters and digits only, leading hesitation sounds ("喂", "嗯",
  "呃") dropped, character runs squeezed ("好好好好" -> "好好"), bounded length;
- ``slot_text``: bounded, lower case, punctuation kept (time phrases and contacts need it).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any, Final

from core.dialect import canonical_dialect, normalize_dialect
from core.text import canonical

MAX_CHARS: Final = (
    256  # an utterance longer than this is truncated; intent lives in the first words
)
DIALECT_KEY: Final = "dialect"

# Hesitation sounds dropped at the start of an utterance (only when something remains, so a bare
# "嗯嗯" stays an affirmation). 呃 carries nothing anywhere.
_LEADING_FILLERS = re.compile(r"^(?:那个|就是说|喂|嗯|呃|哦|噢|喔|诶|欸|哎|唉|啊|呀|恩)+")
_ANYWHERE_FILLERS = re.compile(r"呃+")
_RUNS = re.compile(r"(.)\1{2,}")


def spoken_mandarin(text: str, context: Mapping[str, Any] | None) -> str:
    """Dialect words in `text` -> Mandarin, as the context says.

    ``context["dialect"]`` absent: `text` is not a caller's speech (CLI, evaluation, training)
    and is left alone. Present: the call path's text; ``None`` (or a name that is no dialect,
    e.g. a plain "zh") applies only the entries safe in Mandarin, a dialect ("yue", "sichuan",
    "粤语" ...) its own entries first.
    """
    if context is None or DIALECT_KEY not in context:
        return text
    value = context[DIALECT_KEY]
    try:
        dialect = canonical_dialect(value) if isinstance(value, str) else None
    except ValueError:
        dialect = None  # a language code such as "zh": the caller's dialect is unknown
    return normalize_dialect(text, dialect)


def _keep(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LN"


def slot_text(text: str) -> str:
    """Canonical text as the slot extractors read it: bounded, lower case."""
    return text[: MAX_CHARS * 2].lower()


def model_text(text: str) -> str:
    """Canonical text -> the model's and the rules' input ('' when nothing is left)."""
    text = "".join(ch for ch in slot_text(text) if _keep(ch))
    text = _ANYWHERE_FILLERS.sub("", text)
    stripped = _LEADING_FILLERS.sub("", text)
    if stripped:
        text = stripped
    text = _RUNS.sub(r"\1\1", text)
    return text[:MAX_CHARS]


def raw_model_text(text: str) -> str:
    """``model_text`` of text that did not come from the recognizer (canonical form first)."""
    return model_text(canonical(text[: MAX_CHARS * 2]))
