"""Chinese text normalization for the speech layer.

- ASR side: traditional -> simplified, width/punctuation/spacing normalization, CER.
- TTS side: digits, amounts, percentages and clock times spelled out in Chinese characters.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any

# --- ASR output ------------------------------------------------------------------------------

_CJK = r"\u3400-\u9fff\uf900-\ufaff"
_ZH_PUNCT = "，。？！；：、“”‘’（）《》…—"
_SPACE_NEXT_TO_CJK = re.compile(rf"(?<=[{_CJK}{_ZH_PUNCT}])\s+|\s+(?=[{_CJK}{_ZH_PUNCT}])")
_SPACES = re.compile(r"\s+")
_ASCII_TO_ZH_PUNCT = str.maketrans({",": "，", "?": "？", "!": "！", ";": "；", ":": "："})
_PUNCT_OR_SPACE = re.compile(r"[\s\W_]+", re.UNICODE)


@lru_cache(maxsize=1)
def _t2s_converter() -> Any:
    from opencc import OpenCC  # opencc-python-reimplemented: pure python, loads in ~10 ms

    return OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Traditional -> simplified Chinese (Whisper often answers in traditional)."""
    return str(_t2s_converter().convert(text)) if text else text


def normalize_transcript(text: str) -> str:
    """Canonical form of an ASR transcript for NLU: simplified, NFKC width, Chinese
    punctuation, no spaces next to Chinese characters, trimmed."""
    text = unicodedata.normalize("NFKC", to_simplified(text))
    text = text.translate(_ASCII_TO_ZH_PUNCT)
    text = _SPACE_NEXT_TO_CJK.sub("", text)
    return _SPACES.sub(" ", text).strip()


def strip_punct(text: str) -> str:
    """Drop punctuation and whitespace, lowercase Latin (for matching and CER)."""
    return _PUNCT_OR_SPACE.sub("", unicodedata.normalize("NFKC", text)).lower()


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance between two strings (characters)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate after t2s and punctuation stripping (can exceed 1.0)."""
    ref = strip_punct(to_simplified(reference))
    hyp = strip_punct(to_simplified(hypothesis))
    if not ref:
        return 0.0 if not hyp else 1.0
    return edit_distance(ref, hyp) / len(ref)


# --- Numbers for TTS ---------------------------------------------------------------------------

_DIGITS = "零一二三四五六七八九"
_SMALL_UNITS = ("", "十", "百", "千")
_BIG_UNITS = ("", "万", "亿", "万亿")


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
    """Read a non-negative integer as a Chinese amount: 12800 -> 一万两千八百."""
    if n < 0:
        return "负" + integer_to_chinese(-n)
    if n == 0:
        return "零"
    groups: list[int] = []
    while n:
        groups.append(n % 10000)
        n //= 10000
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


_FULLWIDTH_DIGITS = str.maketrans("０１２３４５６７８９．％", "0123456789.%")
_TIME = re.compile(r"(\d{1,2})[:：](\d{2})")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*[%％]")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _read_number(token: str) -> str:
    if "." in token:
        whole, frac = token.split(".", 1)
        return _read_number(whole) + "点" + digits_to_chinese(frac)
    if len(token) >= 7:
        return digits_to_chinese(token, phone=True)  # phone numbers, ids
    if len(token) > 1 and token.startswith("0"):
        return digits_to_chinese(token)
    return integer_to_chinese(int(token))


def _read_time(match: re.Match[str]) -> str:
    hour, minute = int(match.group(1)), int(match.group(2))
    if minute == 0:
        return integer_to_chinese(hour) + "点"
    return integer_to_chinese(hour) + "点" + integer_to_chinese(minute) + "分"


def spell_numbers(text: str) -> str:
    """Replace digits by Chinese numerals so a pinyin front end can read them."""
    text = text.translate(_FULLWIDTH_DIGITS)
    text = _TIME.sub(_read_time, text)
    text = _PERCENT.sub(lambda m: "百分之" + _read_number(m.group(1)), text)
    return _NUMBER.sub(lambda m: _read_number(m.group(0)), text)
