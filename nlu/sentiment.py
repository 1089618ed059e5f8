"""Per-turn 0-1 scores that callflow can branch on: interest, hesitation, annoyance.

Each score blends the intent distribution (what the model thinks the turn does) with a small
lexicon of cue words (what the words say about the speaker's mood). Rough by design: callflow
compares them with thresholds ("annoyance > 0.7 -> apologise and close"), it does not need
calibrated probabilities.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

_INTENT_WEIGHTS: Final[dict[str, dict[str, float]]] = {
    "interest": {
        "affirm": 0.6,
        "ask_price": 0.8,
        "ask_detail": 0.8,
        "ask_discount": 0.9,
        "book_meeting": 1.0,
        "request_info": 0.8,
        "request_human": 0.3,
    },
    "hesitation": {
        "hesitate": 1.0,
        "price_objection": 0.7,
        "busy_callback": 0.4,
        "ask_discount": 0.3,
        "already_have": 0.3,
    },
    "annoyance": {
        "complaint_dnc": 1.0,
        "deny": 0.35,
        "wrong_person": 0.2,
        "repeat": 0.1,
        "request_human": 0.3,
    },
}
_CUES: Final[dict[str, re.Pattern[str]]] = {
    "interest": re.compile(
        r"感兴趣|有兴趣|不错|挺好|可以啊|想了解|想看看|怎么买|怎么办理|试试|试用|合适的话|发我看看"
    ),
    "hesitation": re.compile(
        r"考虑|想想|再说|不确定|不一定|商量|回头|犹豫|看情况|到时候|再看|不好说|研究一下|比较一下"
    ),
    "annoyance": re.compile(
        r"烦|滚|骚扰|有病|神经|骗子|闭嘴|够了|别打|天天打|又是你们|怎么又|他妈|妈的|靠|滚蛋|有完没完|投诉"
    ),
}
_NEGATED_INTEREST: Final = re.compile(r"不感兴趣|没兴趣|没有兴趣|不想了解|不需要")


def scores(probs: Mapping[str, float], normalized: str) -> dict[str, float]:
    """{"interest", "hesitation", "annoyance"} in [0, 1], three decimals."""
    out: dict[str, float] = {}
    for name, weights in _INTENT_WEIGHTS.items():
        value = sum(probs.get(intent, 0.0) * w for intent, w in weights.items())
        hits = len(_CUES[name].findall(normalized))
        if name == "interest" and _NEGATED_INTEREST.search(normalized):
            hits, value = 0, value * 0.3
        value = 1.0 - (1.0 - value) * (0.6**hits)  # each cue closes 40 % of the gap to 1
        out[name] = round(min(1.0, max(0.0, value)), 3)
    return out
