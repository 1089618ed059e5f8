"""Silence: a callee who says nothing is asked whether they are still there, then let go.

A script's ``silence:`` section makes silence its own path, apart from an unusable answer
(no-match, ``reprompt``/``max_retries``)::

    silence:
      prompt: 您还在听吗？           # said when the callee was silent for the no-input timeout
      max: 1                        # prompts in a row before the goodbye
      goodbye: 好的，那就先不打扰您了，再见。  # then the call ends ``no_response``

Without the section a silent callee gets the unusable-answer path, as before. The robot's
turn records carry ``detail["kind"]`` ("silence" or "silence_goodbye") so reports can tell a
silent callee from one who was not understood.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .section import section

__all__ = ["DEFAULT_GOODBYE", "DEFAULT_PROMPT", "Silence", "parse_silence"]

DEFAULT_PROMPT = "您还在听吗？"
DEFAULT_GOODBYE = "好的，那就先不打扰您了，再见。"
_KEYS = frozenset({"prompt", "max", "goodbye"})


@dataclass(frozen=True, slots=True)
class Silence:
    prompt: str = DEFAULT_PROMPT
    max: int = 1  # silence prompts in a row before the goodbye
    goodbye: str = DEFAULT_GOODBYE


def parse_silence(raw: Any, fill: Callable[[str, str], str]) -> Silence | None:
    """The ``silence:`` section (None: absent). Raises ValueError naming the bad key;
    `fill(text, where)` puts the script's variables into a line."""
    data = section(raw, "silence", _KEYS)
    if data is None:
        return None
    count = data.get("max", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"silence.max must be a whole number >= 0, got {count!r}")
    lines = {}
    for key, default in (("prompt", DEFAULT_PROMPT), ("goodbye", DEFAULT_GOODBYE)):
        text = data.get(key, default)
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"silence.{key} must be a non-empty string")
        lines[key] = fill(text.strip(), f"silence.{key}")
    return Silence(prompt=lines["prompt"], max=count, goodbye=lines["goodbye"])
