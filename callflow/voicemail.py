"""Voicemail: what a script leaves on an answering machine, after its record beep.

A script's ``voicemail:`` section::

    voicemail:
      leave_message: 您好，这里是{company}，想给您介绍一下我们的{product}，稍后再联系您。
      beep_wait_s: 8     # how long to wait for the beep after the greeting is recognised

When the call screening (``callflow.gate``) hears a voicemail greeting, before the greeting or
while it plays, the robot waits for the beep (or for the greeting to end, or `beep_wait_s`),
says `leave_message` and hangs up: the outcome is ``voicemail`` either way. Without the
section it hangs up at once, saying nothing. The robot's turn record carries
``detail["kind"] = "voicemail_message"``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .section import section

__all__ = ["Voicemail", "parse_voicemail"]

_KEYS = frozenset({"leave_message", "beep_wait_s"})
MAX_BEEP_WAIT_S = 30.0


@dataclass(frozen=True, slots=True)
class Voicemail:
    leave_message: str
    beep_wait_s: float = 8.0


def parse_voicemail(raw: Any, fill: Callable[[str, str], str]) -> Voicemail | None:
    """The ``voicemail:`` section (None: absent). Raises ValueError naming the bad key;
    `fill(text, where)` puts the script's variables into the message."""
    data = section(raw, "voicemail", _KEYS)
    if data is None:
        return None
    text = data.get("leave_message")
    if not isinstance(text, str) or not text.strip():
        raise ValueError("voicemail.leave_message must be a non-empty string")
    wait = data.get("beep_wait_s", 8.0)
    if isinstance(wait, bool) or not isinstance(wait, int | float):
        raise ValueError(f"voicemail.beep_wait_s must be a number, got {wait!r}")
    if not 0 < wait <= MAX_BEEP_WAIT_S:
        raise ValueError(f"voicemail.beep_wait_s must be in (0, {MAX_BEEP_WAIT_S:g}], got {wait}")
    return Voicemail(fill(text.strip(), "voicemail.leave_message"), float(wait))
