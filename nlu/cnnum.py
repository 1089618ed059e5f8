"""Chinese and mixed numerals: "两万五" -> 25000, "3k" -> 3000, "十来万" -> 100000..200000.

``parse_number`` returns (value, step): ``step`` is the place value of the last digit given
("两万五": 1000, "十来万": 100000), which is what "来/多" (more than) widen the range by.
"""

from __future__ import annotations

import re
from typing import Final

DIGITS: Final = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "幺": 1,
    "二": 2,
    "两": 2,
    "俩": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
SMALL_UNITS: Final = {"十": 10, "百": 100, "千": 1000}
BIG_UNITS: Final = {"万": 10_000, "亿": 100_000_000}
SUFFIX_UNITS: Final = {"k": 1000, "w": 10_000, "千": 1000, "万": 10_000, "百": 100}
CN_NUM_CHARS: Final = "".join(DIGITS) + "十百千万亿"
_ARABIC: Final = re.compile(r"^(\d+(?:\.\d+)?)([kw千万百]?)$")


def _section(text: str) -> tuple[int, int] | None:
    """Value below 10 000 ("三千五", "二十", "十五", "一百零八") and its last digit's step."""
    total, digit, last_unit, step = 0, None, 1, 1
    for i, ch in enumerate(text):
        if ch in DIGITS:
            if digit is not None and ch != "零":
                return None  # "三四" is a range, handled by the caller
            digit = DIGITS[ch] if ch != "零" else None
        elif ch in SMALL_UNITS:
            unit = SMALL_UNITS[ch]
            total += (digit if digit is not None else 1 if i == 0 else 0) * unit
            last_unit, step, digit = unit, unit, None
        else:
            return None
    if digit is not None:
        if text[-1] in DIGITS and len(text) >= 2 and text[-2] in SMALL_UNITS and last_unit >= 10:
            step = last_unit // 10  # "三千五" = 3500: the trailing digit is the next place
            total += digit * step
        else:
            step = 1
            total += digit
    return total, step


def parse_chinese(text: str) -> tuple[int, int] | None:
    """Integer value of a Chinese numeral and the place value of its last digit."""
    if not text:
        return None
    for unit_ch, unit in sorted(BIG_UNITS.items(), key=lambda kv: -kv[1]):
        if unit_ch in text:
            head, _, tail = text.partition(unit_ch)
            high = parse_chinese(head) if head else (1, 1)
            if high is None:
                return None
            if not tail:
                return high[0] * unit, high[1] * unit
            if len(tail) == 1 and tail in DIGITS:  # "两万五" = 25 000
                return high[0] * unit + DIGITS[tail] * unit // 10, unit // 10
            low = parse_chinese(tail.lstrip("零"))
            if low is None:
                return None
            return high[0] * unit + low[0], low[1]
    return _section(text)


def parse_number(text: str) -> tuple[float, float] | None:
    """Arabic ("3.5万", "3k"), Chinese ("两万五") or mixed ("3万5") numerals -> (value, step)."""
    text = text.strip().lower()
    m = _ARABIC.match(text)
    if m:
        number, unit = m.groups()
        scale = SUFFIX_UNITS.get(unit, 1)
        whole, _, decimals = number.partition(".")
        if decimals:
            return float(number) * scale, scale / (10 ** len(decimals))
        zeros = len(whole) - len(whole.rstrip("0")) if whole.strip("0") else 0
        return float(number) * scale, float(scale * 10**zeros)
    m = re.match(r"^(\d+)([万千])(\d)$", text)  # "3万5"
    if m:
        unit = SUFFIX_UNITS[m.group(2)]
        return float(int(m.group(1)) * unit + int(m.group(3)) * unit // 10), unit / 10
    parsed = parse_chinese(text)
    return (float(parsed[0]), float(parsed[1])) if parsed else None
