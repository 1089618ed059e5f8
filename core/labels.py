"""Display labels (Chinese / English) for the vocabulary people read: outcomes, dispositions
and intents, in reports and in the call summary sent to the CRM.

A key without a label is shown as itself, so a new outcome or a script's own intent still
shows up (untranslated) rather than disappearing.
"""

from __future__ import annotations

from typing import Final

OUTCOME_LABELS: Final[dict[str, tuple[str, str]]] = {
    "qualified": ("合格线索", "Qualified"),
    "callback": ("约回电", "Callback"),
    "not_interested": ("无意向", "Not interested"),
    "dnc": ("拒绝再打", "Do not call"),
    "wrong_person": ("打错人", "Wrong person"),
    "human_requested": ("要求人工", "Human requested"),
    "transferred": ("已转人工", "Transferred"),
    "voicemail": ("语音信箱", "Voicemail"),
    "no_response": ("无回应", "No response"),
    "hung_up": ("中途挂断", "Hung up"),
    "none": ("无结果", "No outcome"),
}

DISPOSITION_LABELS: Final[dict[str, tuple[str, str]]] = {
    "completed": ("已接通", "Completed"),
    "busy": ("占线", "Busy"),
    "no_answer": ("无人接听", "No answer"),
    "rejected": ("拒接", "Rejected"),
    "failed": ("呼叫失败", "Failed"),
    "worker_lost": ("进程中断", "Worker lost"),
    "trunk_rejected": ("中继拒绝", "Trunk rejected"),
    "none": ("未知", "Unknown"),
}

INTENT_LABELS: Final[dict[str, tuple[str, str]]] = {
    "affirm": ("有兴趣", "Interested"),
    "deny": ("不需要", "Declined"),
    "ask_price": ("询价", "Asked price"),
    "ask_detail": ("问详情", "Asked details"),
    "ask_discount": ("问优惠", "Asked discount"),
    "price_objection": ("嫌贵", "Price objection"),
    "busy_callback": ("改天再聊", "Call back later"),
    "request_info": ("要资料", "Wants info"),
    "ask_identity": ("问身份", "Asked who we are"),
    "already_have": ("已有同类", "Already has one"),
    "complaint_dnc": ("投诉/勿扰", "Do not call"),
    "request_human": ("要人工", "Wants a person"),
    "repeat": ("请重复", "Asked to repeat"),
    "wrong_person": ("打错人", "Wrong person"),
    "hesitate": ("再考虑", "Hesitating"),
    "book_meeting": ("约演示", "Booked a demo"),
    "voicemail": ("语音信箱", "Voicemail"),
    "other": ("其他", "Other"),
    "none": ("未识别", "Not understood"),
}


def zh(table: dict[str, tuple[str, str]], key: str) -> str:
    """The Chinese label of `key` (the key itself when it has none)."""
    return table.get(key, (key, key))[0]


def en(table: dict[str, tuple[str, str]], key: str) -> str:
    """The English label of `key` (the key itself when it has none)."""
    return table.get(key, (key, key))[1]
