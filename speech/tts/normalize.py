"""Text normalization for speech: digits, amounts, phone numbers, dates and times -> Chinese.

Every TTS engine runs ``normalize_for_tts`` before synthesis, so a script line or a slot value
written with digits is read the way a person on the phone would read it:

    ¥3,000 / 3000元        -> 三千元               2.5万元      -> 两万五千元
    ¥12.50                 -> 十二元五角           每月2块      -> 每月两块
    138 0013 8000          -> 幺三八，零零幺三，八零零零  (digit by digit, 1 read 幺)
    2026年11月23日 / 2026-11-23 -> 二零二六年十一月二十三日
    下午3:30               -> 下午三点三十分       2:05 -> 两点零五分
    20%  / 8.5折 / 3-5天   -> 百分之二十 / 八五折 / 三到五天

The output has no ASCII digits left, so applying it twice changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Final

_DIGITS: Final = "零一二三四五六七八九"
_SMALL_UNITS: Final = ("", "十", "百", "千")
_BIG_UNITS: Final = ("", "万", "亿", "万亿")
_PHONE_PAUSE: Final = "，"

# --- numbers ---------------------------------------------------------------------------------


def _four_digits(n: int, *, leading: bool) -> str:
    """0 < n < 10000, read with 十/百/千; `leading`: first group of the whole number."""
    out: list[str] = []
    zero_pending = False
    for pos in range(3, -1, -1):
        d = (n // 10**pos) % 10
        if d == 0:
            if out:
                zero_pending = True
            continue
        if zero_pending:
            out.append("零")
            zero_pending = False
        if pos == 1 and d == 1 and not out and leading:
            out.append("十")  # 10..19 at the start: 十二, not 一十二
        elif d == 2 and pos >= 2 and not out:
            out.append("两" + _SMALL_UNITS[pos])  # 两百, 两千
        else:
            out.append(_DIGITS[d] + _SMALL_UNITS[pos])
    return "".join(out)


def integer_to_chinese(n: int) -> str:
    """Read an integer as a Chinese amount: 12800 -> 一万两千八百."""
    if n < 0:
        return "负" + integer_to_chinese(-n)
    if n == 0:
        return "零"
    groups: list[int] = []
    rest = n
    while rest:
        groups.append(rest % 10000)
        rest //= 10000
    if len(groups) > len(_BIG_UNITS):
        return digits_to_chinese(str(n))
    out: list[str] = []
    zero_pending = False
    for index in range(len(groups) - 1, -1, -1):
        group = groups[index]
        if group == 0:
            zero_pending = bool(out)
            continue
        if out and (zero_pending or group < 1000):
            out.append("零")
        zero_pending = False
        out.append(_four_digits(group, leading=not out) + _BIG_UNITS[index])
    text = "".join(out)
    if text.startswith("二") and len(text) > 1 and text[1] in "万亿":
        return "两" + text[1:]  # 两万, 两亿
    return text


def digits_to_chinese(digits: str, *, phone: bool = False) -> str:
    """Read digit by digit: 2025 -> 二零二五; phone numbers read 1 as 幺."""
    table = _DIGITS.replace("一", "幺") if phone else _DIGITS
    return "".join(table[int(c)] for c in digits if c.isdigit())


def read_number(token: str) -> str:
    """A bare number as written: 300 -> 三百, 3.5 -> 三点五, 007 -> 零零七, 13812345678 ->
    幺三八... (seven digits or more are ids or phone numbers, read digit by digit)."""
    if "." in token:
        whole, frac = token.split(".", 1)
        return read_number(whole or "0") + "点" + digits_to_chinese(frac)
    if len(token) >= 7:
        return digits_to_chinese(token, phone=True)
    if len(token) > 1 and token.startswith("0"):
        return digits_to_chinese(token)
    return integer_to_chinese(int(token))


def _liang(text: str) -> str:
    """二 -> 两 for a count of exactly two (两个, 两元, 两点)."""
    return "两" if text == "二" else text


_MULTIPLIER: Final = {"": 1, "百": 100, "千": 1000, "万": 10_000, "亿": 100_000_000}


def read_amount(number: str, unit: str = "") -> str:
    """A quantity with an optional multiplier, as a whole amount when it is one:
    ("2.5", "万") -> 两万五千, ("3000", "") -> 三千, ("2.125", "万") -> 二点一二五万."""
    try:
        value = Decimal(number) * _MULTIPLIER[unit]
    except (InvalidOperation, KeyError):
        return read_number(number) + unit
    if value == value.to_integral_value():
        return _liang(integer_to_chinese(int(value)))
    return read_number(number) + unit


def read_money(number: str, unit: str = "") -> str:
    """Yuan with jiao/fen: ("12.50", "") -> 十二元五角, ("0.99", "") -> 九角九分,
    ("2.5", "万") -> 两万五千元."""
    if unit or "." not in number:
        return read_amount(number, unit) + "元"
    whole, frac = number.split(".", 1)
    frac = (frac + "00")[:2]
    if len(number.split(".", 1)[1]) > 2:
        return read_number(number) + "元"
    yuan = int(whole or "0")
    jiao, fen = int(frac[0]), int(frac[1])
    out = _liang(integer_to_chinese(yuan)) + "元" if yuan else ""
    if jiao:
        out += _DIGITS[jiao] + "角"
    if fen:
        out += ("零" if yuan and not jiao else "") + _DIGITS[fen] + "分"
    return out or "零元"


# --- patterns (applied in this order) -----------------------------------------------------------

_NUM: Final = r"\d+(?:\.\d+)?"
_FULLWIDTH: Final = str.maketrans("０１２３４５６７８９．％￥", "0123456789.%¥")
_BETWEEN_DIGITS: Final = str.maketrans("：－～—", ":---")  # only where digits surround them
_SEPARATOR: Final = re.compile(r"(?<=\d)\s*[：－～—]\s*(?=\d)")
_THOUSANDS: Final = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_MOBILE: Final = re.compile(r"(?<!\d)(?:\+?86[\s-]?)?(1[3-9]\d)[\s-]?(\d{4})[\s-]?(\d{4})(?!\d)")
_SERVICE: Final = re.compile(r"(?<!\d)([48]00)[\s-]?(\d{3})[\s-]?(\d{4})(?!\d)")
_LANDLINE: Final = re.compile(r"(?<!\d)(0\d{2,3})-(\d{7,8})(?!\d)")
_FULL_DATE: Final = re.compile(
    r"(?<!\d)(\d{4})(?:[-/.]|年)(\d{1,2})(?:[-/.]|月)(\d{1,2})(?:[日号])?(?!\d)"
)
_YEAR: Final = re.compile(r"(?<!\d)(\d{4})年")
_MONTH_DAY: Final = re.compile(r"(?<!\d)(\d{1,2})月(\d{1,2})([日号])")
_TIME: Final = re.compile(r"(?<![\d.])(\d{1,2}):(\d{2})(?::(\d{2}))?(?!\d)")
_YUAN_SIGN: Final = re.compile(rf"¥\s*({_NUM})\s*([百千万亿]?)\s*(?:元|块钱|块)?")
_YUAN_SUFFIX: Final = re.compile(rf"({_NUM})\s*([百千万亿]?)\s*(元|块钱|块|人民币)")
_BIG_AMOUNT: Final = re.compile(rf"({_NUM})\s*([万亿])")
_PERCENT: Final = re.compile(rf"({_NUM})\s*%")
_DISCOUNT: Final = re.compile(r"(?<![\d.])(\d)(?:\.(\d))?\s*折")
_RANGE: Final = re.compile(rf"(?<![\d.])({_NUM})\s*[-~]\s*({_NUM})(?![\d.])")
_COUNT_OF_TWO: Final = re.compile(
    r"(?<![\d.第])2(?![\d.])(?=\s*(?:个|位|年|次|天|周|星期|小时|分钟|秒|种|件|台|条|张|份|家|"
    r"人|倍|点|岁|层|辆|只|本|套|项|款|名|句|遍|通|部|间|所|座|步|趟|杯|瓶|盒|箱|斤|公斤|米))"
)
_NUMBER: Final = re.compile(_NUM)


def _phone(*groups: str) -> str:
    return _PHONE_PAUSE.join(digits_to_chinese(g, phone=True) for g in groups)


def _date(year: str | None, month: str, day: str, day_word: str = "日") -> str:
    prefix = digits_to_chinese(year) + "年" if year else ""
    return prefix + integer_to_chinese(int(month)) + "月" + integer_to_chinese(int(day)) + day_word


def _time(hour: str, minute: str, second: str | None) -> str:
    h, m = int(hour), int(minute)
    out = _liang(integer_to_chinese(h)) + "点"
    if m or second:
        out += ("零" if m < 10 else "") + integer_to_chinese(m) + "分"
    if second and int(second):
        out += integer_to_chinese(int(second)) + "秒"
    return out


def _discount(whole: str, tenth: str | None) -> str:
    return _DIGITS[int(whole)] + (_DIGITS[int(tenth)] if tenth else "") + "折"


def _yuan_suffix(m: re.Match[str]) -> str:
    if m[3] == "元":
        return read_money(m[1], m[2])
    return read_amount(m[1], m[2]) + m[3]  # 两块, 三千块钱, 五百人民币


_Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]

_RULES: Final[tuple[_Rule, ...]] = (
    (_MOBILE, lambda m: _phone(*m.groups())),
    (_SERVICE, lambda m: _phone(*m.groups())),
    (_LANDLINE, lambda m: _phone(*m.groups())),
    (_FULL_DATE, lambda m: _date(m[1], m[2], m[3])),
    (_YEAR, lambda m: digits_to_chinese(m[1]) + "年"),
    (_MONTH_DAY, lambda m: _date(None, m[1], m[2], m[3])),
    (_TIME, lambda m: _time(m[1], m[2], m[3])),
    (_YUAN_SIGN, lambda m: read_money(m[1], m[2])),
    (_YUAN_SUFFIX, _yuan_suffix),
    (_BIG_AMOUNT, lambda m: read_amount(m[1], m[2])),
    (_PERCENT, lambda m: "百分之" + read_number(m[1])),
    (_DISCOUNT, lambda m: _discount(m[1], m[2])),
    (_RANGE, lambda m: read_number(m[1]) + "到" + read_number(m[2])),
    (_COUNT_OF_TWO, lambda m: "两"),
    (_NUMBER, lambda m: read_number(m[0])),
)  # fmt: skip


def normalize_for_tts(text: str) -> str:
    """Spell every number in `text` the way it is read aloud (see the module docstring)."""
    text = text.translate(_FULLWIDTH)
    text = _SEPARATOR.sub(lambda m: m[0].strip().translate(_BETWEEN_DIGITS), text)
    text = _THOUSANDS.sub("", text)
    for pattern, replace in _RULES:
        text = pattern.sub(replace, text)
    return text
