"""Entity slots found anywhere in an utterance: contact details, money amounts, products.

- ``wechat`` / ``phone`` / ``email``: a WeChat id after 微信/vx/wx, a mainland mobile number
  (Arabic or spoken Chinese digits, 幺 = 1), an e-mail address. These are PII: they go into
  slots (structured fields), never into log text.
- ``amount``: a budget or price ("两万五", "3k", "十来万", "三四千", "两到三万", "5000块左右") as
  ``{"value", "min", "max", "approx", "text"}`` in yuan.
- ``products``: product words from a built-in list plus ``context["products"]`` (a script's own).
- ``team_size`` (a headcount, "我们有二十来个人" -> 20) and ``decision_maker`` (True: "我是老板",
  "我说了算"; False: "要问老板", "我做不了主"): what a sales script asks to qualify a lead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from nlu.cnnum import CN_NUM_CHARS, DIGITS, parse_number

_CN = f"[{CN_NUM_CHARS}]"
_WECHAT: Final = re.compile(
    r"(?:微信|weixin|wechat|vx|wx|v信|薇信)(?:号|号码|id)?(?:是|为|:|：)?\s*([a-z][-_a-z0-9]{5,19})",
    re.IGNORECASE,
)
_PHONE: Final = re.compile(r"(?<!\d)(?:\+?86[- ]?)?(1[3-9]\d(?:[- ]?\d{4}){2})(?!\d)")
_SPOKEN_PHONE: Final = re.compile(f"[{''.join(DIGITS)}]{{11}}")
_EMAIL: Final = re.compile(r"[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}", re.IGNORECASE)

_NUM = rf"(?:\d+(?:\.\d+)?|{_CN}+)"
_UNIT = r"(?:k|w|千|万|百|块钱|块|元|rmb|人民币)"
_AMOUNT: Final = re.compile(
    rf"(?P<lo>{_NUM})(?:(?P<sep>到|至|-|~|～)(?P<hi>{_NUM}))?(?P<unit>{_UNIT}*)"
    rf"(?P<approx>来|多|左右|上下|出头)?(?P<unit2>{_UNIT}*)",
    re.IGNORECASE,
)
_MONEY_CONTEXT: Final = re.compile(r"预算|价|钱|费|贵|便宜|报价|收费|块|元|花|投入|成本")
_NOT_MONEY_AFTER: Final = re.compile(r"^(?:点|号|月|天|年|个|位|岁|分钟|小时|次|台|人|家|遍)")

DEFAULT_PRODUCTS: Final = (
    "crm",
    "erp",
    "saas",
    "系统",
    "软件",
    "平台",
    "小程序",
    "app",
    "公众号",
    "会员",
    "套餐",
    "课程",
    "培训",
    "保险",
    "贷款",
    "信用卡",
    "理财",
    "宽带",
    "流量",
    "网站",
    "广告",
    "推广",
    "装修",
    "设备",
    "服务器",
    "云服务",
    "外呼",
    "机器人",
    "试用",
    "演示版",
)


def contacts(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    if m := _WECHAT.search(text):
        out["wechat"] = m.group(1)
    if m := _PHONE.search(text):
        out["phone"] = re.sub(r"[- ]", "", m.group(1))
    elif m := _SPOKEN_PHONE.search(text):
        digits = "".join(str(DIGITS[ch]) for ch in m.group(0))
        if re.fullmatch(r"1[3-9]\d{9}", digits):
            out["phone"] = digits
    if m := _EMAIL.search(text):
        out["email"] = m.group(0).lower()
    return out


def _range_of_pair(text: str) -> tuple[str, str] | None:
    """ "三四千" -> ("三千", "四千"): two adjacent digits form a range."""
    m = re.fullmatch(f"([{''.join(DIGITS)}])([{''.join(DIGITS)}])(.*)", text)
    if m and DIGITS[m.group(2)] == DIGITS[m.group(1)] + 1:
        return m.group(1) + m.group(3), m.group(2) + m.group(3)
    return None


def _value(number: str, unit: str) -> tuple[float, float] | None:
    unit = unit.lower().replace("块钱", "").replace("块", "").replace("元", "")
    unit = unit.replace("rmb", "").replace("人民币", "")
    return parse_number(number + unit)


def amount(text: str) -> dict[str, Any] | None:
    """The first money amount in a simplified text, or None."""
    for m in _AMOUNT.finditer(text):
        unit = (m.group("unit") or "") + (m.group("unit2") or "")
        rest = text[m.end() :]
        if _NOT_MONEY_AFTER.match(rest) or _NOT_MONEY_AFTER.match(text[m.end("lo") :]):
            continue
        has_unit = unit or re.search(r"[kw千万]$", m.group("hi") or m.group("lo"), re.I)
        if not has_unit and not _MONEY_CONTEXT.search(text):
            continue
        if m.group("lo").isdigit() and len(m.group("lo")) >= 7:
            continue  # a phone or account number, not money
        lo_text, hi_text = m.group("lo"), m.group("hi")
        pair = _range_of_pair(lo_text + unit.strip("块钱元")) if not hi_text else None
        if pair:
            lo, hi = _value(pair[0], ""), _value(pair[1], "")
        else:
            lo = _value(lo_text, unit if not hi_text else _hi_unit(hi_text, unit))
            hi = _value(hi_text, unit) if hi_text else None
        if lo is None or lo[0] <= 0:
            continue
        approx = bool(m.group("approx")) or hi is not None
        low, high = lo[0], hi[0] if hi else lo[0]
        if m.group("approx") in ("来", "多", "出头"):
            high = low + lo[1]
        return {
            "value": round(low if hi is None else (low + high) / 2, 2),
            "min": round(low, 2),
            "max": round(high, 2),
            "approx": approx,
            "text": m.group(0),
        }
    return None


def _hi_unit(hi_text: str, unit: str) -> str:
    """ "两到三万": the unit of the upper bound applies to the lower one too."""
    tail = re.search(r"[kw千万百]+$", hi_text, re.IGNORECASE)
    return (tail.group(0) if tail else "") + unit


def products(text: str, extra: Iterable[str] = ()) -> list[str]:
    lowered = text.lower()
    found = [p for p in (*extra, *DEFAULT_PRODUCTS) if p and p.lower() in lowered]
    return list(dict.fromkeys(found))


_TEAM: Final = re.compile(
    rf"(?:团队|公司|我们|销售|员工|客服|人员|一共|总共|大概|有)[^，,。.？?]{{0,4}}?"
    rf"(?P<n>\d+|{_CN}+)(?P<approx>来|多)?(?:个)?(?:人|员工|销售|坐席|号人)"
)
_DECIDES_YES: Final = re.compile(
    r"我(?:就是|是)(?:老板|负责人|经理|总经理|老总|创始人)|我(?:说了算|来定|能定|拍板|决定)"
)
_DECIDES_NO: Final = re.compile(
    r"(?:要|得|需要|还得|还要)(?:问问?|问一下|请示|跟|和)?(?:一下)?(?:我们)?(?:的)?"
    r"(?:老板|领导|上面|经理|老总)|(?:老板|领导|上面)(?:定|决定|说了算|拍板)"
    r"|我(?:说了不算|做不了主|定不了|决定不了)"
)


def team_size(text: str) -> int | None:
    """The headcount a callee gives ("我们有二十来个人" -> 20), or None."""
    m = _TEAM.search(text)
    if m is None:
        return None
    found = parse_number(m.group("n"))
    return int(found[0]) if found and 0 < found[0] < 1_000_000 else None


def decision_maker(text: str) -> bool | None:
    """True when the callee says they decide ("我是老板", "我说了算"), False when someone else
    does ("要问老板", "我做不了主"), None when the turn says neither."""
    if _DECIDES_NO.search(text):
        return False
    if _DECIDES_YES.search(text):
        return True
    return None


def entity_slots(text: str, context: Mapping[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = dict(contacts(text))
    size = team_size(text)
    if size is not None:
        out["team_size"] = size
    decides = decision_maker(text)
    if decides is not None:
        out["decision_maker"] = decides
    money = amount(text)
    if money:
        out["amount"] = money
    extra = (context or {}).get("products") or ()
    found = products(text, [str(p) for p in extra])
    if found:
        out["products"] = found
    return out
