"""Knowledge answers in a call: look up the answer before the machine steps.

A script handler ``{answer: knowledge, fallback: "…"}`` answers a product question in place
from the campaign's knowledge file. The machine stays pure: the session asks ``lookup`` (off the
event loop) for the answer when the turn's intent leads to such a handler in the current state,
and hands it to the machine in ``UserSaid.answer``; the machine says it, or the handler's
fallback line when retrieval was not confident (``None``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nlu.knowledge.base import Answer, KnowledgeBase

from .machine import DialogState
from .script import Script


def wants_answer(script: Script, state: DialogState, intent: str) -> bool:
    """Whether `intent` in `state`'s node goes to an ``answer: knowledge`` handler."""
    node = script.states.get(state.node)
    if node is None:
        return False
    handler = script.handler(node, intent)
    if handler is not None:  # a handler list: the branch its conditions pick now
        handler = handler.pick(state.env())
    return handler is not None and handler.answer == "knowledge"


def lookup(
    knowledge: KnowledgeBase | None,
    script: Script,
    state: DialogState,
    intent: str,
    text: str,
    context: Mapping[str, Any] | None = None,
) -> Answer | None:
    """The knowledge answer to `text` when the turn needs one (else None, without a lookup)."""
    if knowledge is None or not text.strip() or not wants_answer(script, state, intent):
        return None
    return knowledge.answer(text, context)


def detail(answer: Answer | None) -> dict[str, Any]:
    """What a turn record keeps of a lookup: the entry and its score (no text, no PII)."""
    if answer is None:
        return {"entry": None}
    return {"entry": answer.entry_id, "confidence": round(answer.confidence, 4)}
