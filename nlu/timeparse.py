"""Callback times in spoken Chinese -> an absolute, timezone-aware datetime.

"明天下午三点", "下周一上午", "过两个小时", "晚上七点以后", "周五10:30", "半小时后", "后天", "改天"
are resolved against ``now`` in the lead's timezone. Business-call conventions fill the gaps:
a day alone means 10:00, a part of the day its typical hour (上午 10:00, 下午 15:00, 晚上 19:00),
a bare hour from 1 to 6 is afternoon, and a time already past today moves to the next day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any, Final
from zoneinfo import ZoneInfo

from nlu.cnnum import CN_NUM_CHARS, parse_number

DEFAULT_TIMEZONE: Final = "Asia/Shanghai"
_N = rf"(?:\d{{1,2}}|[{CN_NUM_CHARS}]{{1,3}})"
_WEEKDAY: Final = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "末": 5}
_DAY_WORDS: Final = {
    "大后天": 3,
    "后天": 2,
    "后日": 2,
    "明天": 1,
    "明儿": 1,
    "明个": 1,
    "听日": 1,
    "明日": 1,
    "今天": 0,
    "今日": 0,
    "今儿": 0,
    "明晚": 1,
    "明早": 1,
    "今晚": 0,
    "今早": 0,
}
_PARTS: Final = {
    "凌晨": 6,
    "早上": 9,
    "早晨": 9,
    "上午": 10,
    "明早": 9,
    "今早": 9,
    "中午": 12,
    "下午": 15,
    "傍晚": 18,
    "晚上": 19,
    "今晚": 19,
    "明晚": 19,
    "夜里": 20,
    "晚些": 17,
}
_PM_PARTS: Final = frozenset({"下午", "傍晚", "晚上", "今晚", "明晚", "夜里"})

_DAY_RE = re.compile(
    r"(?P<week>(?P<wk>下下|下个?|这个?|本)?(?:周|星期|礼拜)(?P<wd>[一二三四五六日天末]))"
    r"|(?P<nextweek>下个?(?:周|星期|礼拜))"
    r"|(?P<word>" + "|".join(sorted(_DAY_WORDS, key=len, reverse=True)) + ")"
    r"|(?P<fewdays>过两天|过几天|改天|改日|回头)"
    r"|(?P<month>下个?月)"
)
_PART_RE = re.compile("|".join(sorted(_PARTS, key=len, reverse=True)))
_CLOCK_RE = re.compile(
    rf"(?P<h>{_N})(?:点钟?|:|：|时)(?P<m>半|一刻|三刻|{_N}分?|\d{{2}})?(?P<mod>以后|之后|后|左右|前|之前)?"
)
_AFTER_RE = re.compile(
    rf"(?:再?过)?(?P<n>{_N}|半)?个?(?P<half>半)?(?P<u>小时|钟头|分钟|分|天)(?:以后|之后|后)"
    rf"|再?过(?P<n2>{_N}|半)个?(?P<half2>半)?(?P<u2>小时|钟头|分钟|天)"
)
_VAGUE: Final = {
    "待会": timedelta(minutes=30),
    "等会": timedelta(minutes=30),
    "一会儿": timedelta(minutes=30),
    "稍后": timedelta(minutes=30),
    "晚点": timedelta(hours=2),
    "晚一点": timedelta(hours=2),
    "晚些时候": timedelta(hours=2),
}
_VAGUE_RE = re.compile("|".join(sorted(_VAGUE, key=len, reverse=True)))


@dataclass(frozen=True, slots=True)
class Found:
    when: datetime
    text: str


def _num(text: str | None) -> float | None:
    if not text:
        return None
    if text == "半":
        return 0.5
    parsed = parse_number(text)
    return parsed[0] if parsed else None


def resolve_now(context: dict[str, Any] | None) -> datetime:
    """``context["now"]`` (ISO; naive = lead's local time) or the clock, in the lead's zone."""
    ctx = context or {}
    tz: tzinfo
    try:
        tz = ZoneInfo(str(ctx.get("timezone") or DEFAULT_TIMEZONE))
    except (ValueError, KeyError, OSError):
        tz = ZoneInfo(DEFAULT_TIMEZONE)
    raw = ctx.get("now")
    now = raw if isinstance(raw, datetime) else None
    if isinstance(raw, str):
        try:
            now = datetime.fromisoformat(raw)
        except ValueError:
            now = None
    if now is None:
        return datetime.now(tz)
    return now.replace(tzinfo=tz) if now.tzinfo is None else now.astimezone(tz)


def _relative(text: str, now: datetime) -> Found | None:
    m = _AFTER_RE.search(text)
    if m:
        n = _num(m.group("n") or m.group("n2"))
        unit = m.group("u") or m.group("u2")
        half = 0.5 if (m.group("half") or m.group("half2")) else 0.0
        amount = (n if n is not None else 1.0) + half
        if unit == "天":
            return Found(now + timedelta(days=amount), m.group(0))
        minutes = amount * (60 if unit in ("小时", "钟头") else 1)
        return Found(now + timedelta(minutes=minutes), m.group(0))
    v = _VAGUE_RE.search(text)
    if v and not _CLOCK_RE.search(text) and not _DAY_RE.search(text):
        return Found(now + _VAGUE[v.group(0)], v.group(0))
    return None


def _day(m: re.Match[str], today: date) -> date:
    if m.group("week"):
        target = _WEEKDAY[m.group("wd")]
        prefix = m.group("wk") or ""
        monday = today - timedelta(days=today.weekday())
        weeks = 2 if prefix == "下下" else 1 if prefix.startswith("下") else 0
        day = monday + timedelta(weeks=weeks, days=target)
        return day if weeks or day >= today else day + timedelta(weeks=1)
    if m.group("nextweek"):
        return today - timedelta(days=today.weekday()) + timedelta(weeks=1)
    if m.group("word"):
        return today + timedelta(days=_DAY_WORDS[m.group("word")])
    if m.group("fewdays"):
        return today + timedelta(days=1 if m.group("fewdays") in ("改天", "改日", "回头") else 2)
    first = today.replace(day=1) + timedelta(days=32)
    return first.replace(day=1)


def _clock(m: re.Match[str], part: str | None) -> tuple[int, int] | None:
    hour = _num(m.group("h"))
    if hour is None or not 0 <= hour <= 24:
        return None
    raw_min = m.group("m") or ""
    minute = {"半": 30, "一刻": 15, "三刻": 45}.get(raw_min)
    if minute is None:
        minute = int(_num(raw_min.rstrip("分")) or 0) if raw_min else 0
    h = int(hour)
    if (
        (part in _PM_PARTS and h < 12)
        or (part == "中午" and h <= 3)
        or (part is None and 1 <= h <= 6)
    ):
        h += 12
    return (h % 24, min(minute, 59))


def parse_time(text: str, now: datetime) -> Found | None:
    """The first callback time mentioned in a simplified text, resolved against ``now``."""
    rel = _relative(text, now)
    if rel is not None:
        return Found(rel.when.replace(second=0, microsecond=0), rel.text)
    day_m = _DAY_RE.search(text)
    part_m = _PART_RE.search(text)
    clock_m = _CLOCK_RE.search(text)
    if (
        clock_m
        and clock_m.group("h") in ("一", "1")
        and not (day_m or part_m or clock_m.group("m"))
    ):
        clock_m = None  # "便宜一点", "快一点": not a time
    if not (day_m or part_m or clock_m):
        return None
    part = part_m.group(0) if part_m else None
    hm = _clock(clock_m, part) if clock_m else None
    if hm is None:
        hm = (_PARTS[part], 0) if part else (10, 0)
    day = _day(day_m, now.date()) if day_m else now.date()
    when = now.replace(hour=hm[0], minute=hm[1], second=0, microsecond=0)
    when = when.replace(year=day.year, month=day.month, day=day.day)
    if when <= now and not day_m:
        if part and not clock_m:
            when = now + timedelta(hours=1)  # "下午" said in the afternoon: soon
        else:
            when += timedelta(days=1)
    spans = [m.span() for m in (day_m, part_m, clock_m) if m]
    start, end = min(s for s, _ in spans), max(e for _, e in spans)
    return Found(when.replace(second=0, microsecond=0), text[start:end])
