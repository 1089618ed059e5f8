"""A call in one line for the salesperson, from its turns alone (no LLM): the callee's intents
in order, each with the key slot it carried, e.g. "有兴趣；询价；约演示：明天下午".

Slots come from the callee turns' ``detail["slots"]`` (``nlu.slots``: time and callback_at,
wechat, phone, email, amount, products); a later turn's value wins over an earlier one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from core.labels import INTENT_LABELS, zh

SEP = "；"
# slots worth a word in the summary, in this order, with their labels
KEY_SLOTS: tuple[tuple[str, str], ...] = (
    ("time", ""),  # "约演示：明天下午": the time phrase reads on its own
    ("wechat", "微信 "),
    ("amount", "预算 "),
    ("products", "产品 "),
)
SKIP_INTENTS = frozenset({"repeat", "other"})  # say nothing a salesperson needs


def _slot_words(slots: Mapping[str, Any]) -> list[str]:
    words = []
    for key, label in KEY_SLOTS:
        value = slots.get(key)
        if value in (None, "", [], {}):
            continue
        text = "、".join(map(str, value)) if isinstance(value, list) else str(value)
        words.append(f"{label}{text}")
    return words


def callee_turns(turns: Iterable[Any]) -> list[Any]:
    """The callee's turns (objects with `speaker`, `intent`, `detail`), in call order."""
    return [t for t in turns if t.speaker == "callee"]


def merged_slots(turns: Iterable[Any]) -> dict[str, Any]:
    """Every slot the callee's turns carried; a later turn's value wins."""
    out: dict[str, Any] = {}
    for t in callee_turns(turns):
        slots = (t.detail or {}).get("slots") or {}
        if isinstance(slots, dict):
            out.update({k: v for k, v in slots.items() if v not in (None, "", [], {})})
    return out


def intents_in_order(turns: Iterable[Any]) -> list[str]:
    """The callee's intents, in order (turns without one left out)."""
    return [t.intent for t in callee_turns(turns) if t.intent]


def summarize(turns: Iterable[Any]) -> str:
    """One line: each intent's Chinese label with its key slots ("约演示：明天下午"); a repeat of
    the previous intent without new slots is said once. Empty when the callee said nothing."""
    parts: list[str] = []
    last: str | None = None
    for t in callee_turns(turns):
        intent = t.intent
        if not intent or intent in SKIP_INTENTS:
            continue
        words = _slot_words((t.detail or {}).get("slots") or {})
        if intent == last and not words:
            continue
        label = zh(INTENT_LABELS, intent)
        parts.append(f"{label}：{'，'.join(words)}" if words else label)
        last = intent
    return SEP.join(parts)
