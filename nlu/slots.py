"""Slots of an utterance: time phrase and callback time, contacts, amount, products.

- ``time``: the time phrase as said ("明天下午"), and ``callback_at``: it resolved to an ISO
  time with offset in the lead's timezone (``context["timezone"]``, IANA name, default
  Asia/Shanghai; ``context["now"]`` overrides the clock for tests). Only for intents where a
  time means "call me then" (busy_callback, book_meeting, hesitate, affirm), so "便宜一点" is
  never read as one o'clock.
- ``wechat`` / ``phone`` / ``email`` / ``amount`` / ``products``: ``nlu.entities``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from nlu.entities import entity_slots
from nlu.timeparse import parse_time, resolve_now

TIME_INTENTS: Final = frozenset({"busy_callback", "book_meeting", "hesitate", "affirm"})
NO_SLOT_INTENTS: Final = frozenset({"voicemail"})


def extract_slots(
    intent: str, simplified: str, context: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Slots for an intent from canonical text (``nlu.prepare.slot_text``); {} when none."""
    if intent in NO_SLOT_INTENTS or not simplified.strip():
        return {}
    slots: dict[str, Any] = {}
    if intent in TIME_INTENTS:
        compact = "".join(simplified.split())
        found = parse_time(compact, resolve_now(dict(context or {})))
        if found is not None:
            slots["time"] = found.text
            slots["callback_at"] = found.when.isoformat()
    slots.update(entity_slots(simplified, context))
    return slots
