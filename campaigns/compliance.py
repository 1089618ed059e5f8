"""Compliance rules applied before every dial: calling window and frequency caps.

The calling window is the lead's local time: one or more ranges a day ("09:00-12:00,
14:00-20:00"), on some weekdays ("mon-fri"), never on a holiday (dates in the config). A
campaign may have its own hours and days (`Campaign.calling_hours` / `calling_days`);
holidays are the node's. Frequency caps limit how often one number is called across every
campaign, in the lead's local day and (Monday-based) week. The claim (`campaigns.store`)
applies both in its transaction; the do-not-call lists are `campaigns.dnc`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ALL_DAYS = frozenset(range(7))
SEARCH_DAYS = 400  # next_open looks this far ahead (a year of holidays and closed days)

Range = tuple[time, time]


def _parse_range(text: str) -> Range:
    m = _RANGE.match(text)
    if not m:
        raise ValueError(f"calling_hours must look like 09:00-12:00,14:00-20:00, got {text!r}")
    h1, m1, h2, m2 = (int(x) for x in m.groups())
    if not (0 <= h1 <= 23 and 0 <= h2 <= 24 and m1 < 60 and m2 < 60) or (h2 == 24 and m2):
        raise ValueError(f"calling_hours out of range: {text!r}")
    end = time(23, 59, 59, 999999) if h2 == 24 else time(h2, m2)
    return time(h1, m1), end


def parse_hours(text: str) -> tuple[Range, ...]:
    """ "09:00-12:00,14:00-20:00" -> its ranges; one may cross midnight ("22:00-02:00")."""
    ranges = tuple(_parse_range(part) for part in text.split(","))
    if not ranges:
        raise ValueError("calling_hours is empty")
    return ranges


def parse_days(text: str) -> frozenset[int]:
    """ "mon-fri,sun" -> weekday numbers (Monday 0); "" or "all" -> every day."""
    text = text.strip().lower()
    if text in ("", "all"):
        return ALL_DAYS
    days: set[int] = set()
    for part in text.split(","):
        first, _, last = (p.strip() for p in part.partition("-"))
        try:
            a = DAY_NAMES.index(first)
            b = DAY_NAMES.index(last) if last else a
        except ValueError:
            raise ValueError(
                f"calling_days must name days like mon-fri,sat (got {part.strip()!r})"
            ) from None
        days.update(_cycle(a, b))
    return frozenset(days)


def _cycle(a: int, b: int) -> list[int]:
    """Weekdays from a to b, wrapping past Sunday ("fri-mon")."""
    out = [a]
    while a != b:
        a = (a + 1) % 7
        out.append(a)
    return out


def parse_holidays(text: str) -> frozenset[date]:
    """ "2026-10-01,2026-10-02" -> those dates."""
    out: set[date] = set()
    for part in text.split(","):
        if part.strip():
            try:
                out.add(date.fromisoformat(part.strip()))
            except ValueError:
                raise ValueError(
                    f"holidays must be YYYY-MM-DD dates, got {part.strip()!r}"
                ) from None
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class CallingWindow:
    """When a lead may be dialed, in its local time: ranges a day, weekdays, not holidays."""

    ranges: tuple[Range, ...]
    days: frozenset[int] = ALL_DAYS
    holidays: frozenset[date] = frozenset()

    @classmethod
    def parse(cls, hours: str, days: str = "", holidays: str = "") -> CallingWindow:
        return cls(parse_hours(hours), parse_days(days), parse_holidays(holidays))

    def override(self, hours: str | None, days: str | None) -> CallingWindow:
        """This window with a campaign's own hours and/or days (None: keep this one's)."""
        out = self
        if hours:
            out = replace(out, ranges=parse_hours(hours))
        if days:
            out = replace(out, days=parse_days(days))
        return out

    @property
    def start(self) -> time:
        """The first range's opening time (a default callback's hour)."""
        return self.ranges[0][0]

    def _open_day(self, d: date) -> bool:
        return d.weekday() in self.days and d not in self.holidays

    def allows(self, now_utc: datetime, tz: str) -> bool:
        local = now_utc.astimezone(zone(tz))
        t, today = local.time(), local.date()
        return any(self._in_range(r, t, today) for r in self.ranges)

    def _in_range(self, r: Range, t: time, today: date) -> bool:
        start, end = r
        if start <= end:
            return start <= t < end and self._open_day(today)
        if t >= start:  # the evening part of a range across midnight
            return self._open_day(today)
        # the morning part: the range began yesterday, and yesterday's day rules apply
        return t < end and self._open_day(today - timedelta(days=1))

    def next_open(self, now_utc: datetime, tz: str) -> datetime:
        """The next moment (in now_utc's timezone) the window is open: now if it is open."""
        if self.allows(now_utc, tz):
            return now_utc
        local = now_utc.astimezone(zone(tz))
        for offset in range(SEARCH_DAYS):
            d = local.date() + timedelta(days=offset)
            if not self._open_day(d):
                continue
            for start in sorted(r[0] for r in self.ranges):
                candidate = datetime.combine(d, start, tzinfo=local.tzinfo)
                if candidate > local:
                    return candidate.astimezone(now_utc.tzinfo)
        raise ValueError("the calling window never opens (every day closed or a holiday)")


@dataclass(frozen=True, slots=True)
class FrequencyCap:
    """At most `per_day` calls to one number in its local day and `per_week` in its local
    (Monday-based) week, across every campaign; 0 switches a limit off."""

    per_day: int = 1
    per_week: int = 3

    def __post_init__(self) -> None:
        if self.per_day < 0 or self.per_week < 0:
            raise ValueError("frequency caps must be 0 (off) or more")

    @property
    def active(self) -> bool:
        return bool(self.per_day or self.per_week)

    @staticmethod
    def day_and_week_start(now_utc: datetime, tz: str) -> tuple[datetime, datetime]:
        """The start (in UTC) of the local day and of the local week (Monday) of `now_utc`."""
        local = now_utc.astimezone(zone(tz))
        day = datetime.combine(local.date(), time(0), tzinfo=local.tzinfo)
        week = day - timedelta(days=local.weekday())
        return day.astimezone(now_utc.tzinfo), week.astimezone(now_utc.tzinfo)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {name!r}") from None


_DIGITS = re.compile(r"\D")


def normalize_phone(raw: str) -> str:
    """Digits only, Chinese country code removed: "+86 138-0013-8000" -> "13800138000"."""
    digits = _DIGITS.sub("", raw)
    if digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return digits
