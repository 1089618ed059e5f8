"""Compliance rules applied before every dial: calling window and do-not-call list."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True, slots=True)
class CallingWindow:
    """Local hours in which a lead may be dialed, e.g. "09:00-21:00"."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> CallingWindow:
        m = _WINDOW.match(text)
        if not m:
            raise ValueError(f"calling_hours must look like 09:00-21:00, got {text!r}")
        h1, m1, h2, m2 = (int(x) for x in m.groups())
        if not (0 <= h1 <= 23 and 0 <= h2 <= 24 and m1 < 60 and m2 < 60):
            raise ValueError(f"calling_hours out of range: {text!r}")
        end = time(23, 59, 59) if h2 == 24 else time(h2, m2)
        return cls(time(h1, m1), end)

    def allows(self, now_utc: datetime, tz: str) -> bool:
        local = now_utc.astimezone(zone(tz)).time()
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # window across midnight

    def next_open(self, now_utc: datetime, tz: str) -> datetime:
        """The next moment (UTC) the window opens, or now if it is open."""
        if self.allows(now_utc, tz):
            return now_utc
        local = now_utc.astimezone(zone(tz))
        candidate = local.replace(
            hour=self.start.hour, minute=self.start.minute, second=0, microsecond=0
        )
        if candidate <= local:
            candidate += timedelta(days=1)
        return candidate.astimezone(now_utc.tzinfo)


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
