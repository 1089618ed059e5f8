"""FakeClassifier: keyword table, no model file; for unit tests and dry runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nlu.base import IntentResult
from nlu.prepare import model_text, raw_model_text, spoken_mandarin

# First match wins, so specific phrases come before general ones.
DEFAULT_TABLE: tuple[tuple[str, str], ...] = (
    ("您拨打的", "voicemail"),
    ("留言", "voicemail"),
    ("别再打", "complaint_dnc"),
    ("不要再打", "complaint_dnc"),
    ("投诉", "complaint_dnc"),
    ("骚扰", "complaint_dnc"),
    ("转人工", "request_human"),
    ("打错", "wrong_person"),
    ("演示", "book_meeting"),
    ("来我公司", "book_meeting"),
    ("已经有", "already_have"),
    ("已经买", "already_have"),
    ("考虑", "hesitate"),
    ("想想", "hesitate"),
    ("便宜", "ask_discount"),
    ("优惠", "ask_discount"),
    ("太贵", "price_objection"),
    ("多少钱", "ask_price"),
    ("价格", "ask_price"),
    ("开会", "busy_callback"),
    ("忙", "busy_callback"),
    ("再打", "busy_callback"),
    ("微信", "request_info"),
    ("资料", "request_info"),
    ("你是谁", "ask_identity"),
    ("哪个公司", "ask_identity"),
    ("机器人", "ask_identity"),
    ("再说一遍", "repeat"),
    ("没听清", "repeat"),
    ("什么功能", "ask_detail"),
    ("怎么用", "ask_detail"),
    ("不需要", "deny"),
    ("不用", "deny"),
    ("没兴趣", "deny"),
    ("不要", "deny"),
    ("好的", "affirm"),
    ("可以", "affirm"),
    ("有兴趣", "affirm"),
    ("请讲", "affirm"),
    ("是的", "affirm"),
)


class FakeClassifier:
    """Implements ``nlu.base.IntentClassifier`` with substring rules on the model text.

    ``table`` is a sequence of (keyword, intent) pairs or a mapping; ``exact`` maps whole
    utterances to intents and is checked first (scripted test dialogues). Like the real models
    it maps the caller's dialect words to Mandarin when the context names a dialect.
    """

    name = "fake"

    def __init__(
        self,
        table: Sequence[tuple[str, str]] | Mapping[str, str] = DEFAULT_TABLE,
        *,
        exact: Mapping[str, str] | None = None,
        default: str = "other",
        confidence: float = 0.9,
    ) -> None:
        pairs = list(table.items()) if isinstance(table, Mapping) else list(table)
        self.table = [(raw_model_text(keyword), intent) for keyword, intent in pairs]
        self.exact = {raw_model_text(text): intent for text, intent in (exact or {}).items()}
        self.default = default
        self.confidence = confidence
        self.calls: list[str] = []  # what it was asked, for assertions in tests

    def classify(self, text: str, context: Mapping[str, Any] | None = None) -> IntentResult:
        self.calls.append(text)
        normalized = model_text(spoken_mandarin(text, context))
        if normalized in self.exact:
            return IntentResult(self.exact[normalized], 1.0)
        for keyword, intent in self.table:
            if keyword and keyword in normalized:
                return IntentResult(intent, self.confidence)
        return IntentResult(self.default, 1.0 if not normalized else 0.5)
