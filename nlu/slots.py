"""Slot extraction: a callback / meeting time mentioned in the utterance ("明天下午三点")."""

from __future__ import annotations

import re
from typing import Any, Final

_NUM = "[0-9零一二三四五六七八九十两半]"
_DAY = (
    "(?:今天|明天|后天|大后天|今晚|明晚|明早|明儿个?|明个|听日|后日|"
    "(?:下个?|这个?|本)?(?:周|星期|礼拜)[一二三四五六日天末]|"
    "下(?:个)?(?:周|星期|礼拜|月)|月底|月初|周末|过两天|过几天|改天)"
)
_PART = "(?:上午|下午|中午|晚上|早上|傍晚|夜里|晚些|后晌)"
_CLOCK = f"(?:{_NUM}{{1,3}}(?:点|点钟|:)(?:半|{_NUM}{{1,2}}分?)?(?:以后|之后|左右|前)?)"
_RELATIVE = (
    f"(?:{_NUM}{{1,3}}个?(?:分钟|小时|钟头)(?:以后|之后|后)"
    "|晚点|晚一点|待会儿?|等会儿?|一会儿|稍后)"
)
_TIME: Final = re.compile(f"{_DAY}{_PART}?{_CLOCK}?|{_PART}{_CLOCK}?|{_CLOCK}|{_RELATIVE}")

TIME_INTENTS: Final = frozenset({"busy_callback", "book_meeting", "hesitate"})


def extract_slots(intent: str, normalized: str) -> dict[str, Any]:
    """Slots for an intent from normalized text; {} when none apply."""
    if intent not in TIME_INTENTS:
        return {}
    found = _TIME.search(normalized)
    return {"time": found.group(0)} if found else {}
