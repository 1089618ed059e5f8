"""The compliance rules on their own: calling windows (ranges, weekdays, holidays, the lead's
local time), frequency-cap day and week boundaries, retry policy, the pacing token bucket,
and do-not-call numbers matching however they were written."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from campaigns import dnc
from campaigns.compliance import CallingWindow, FrequencyCap, parse_days
from campaigns.pacing import Pacer, PacingConfig, TokenBucket
from campaigns.retry import DEFAULT, RetryPolicy
from core.vocab import Disposition

SH = "Asia/Shanghai"  # UTC+8, no DST
MON = datetime(2026, 11, 23, tzinfo=UTC)  # a Monday; 00:00 UTC is 08:00 in Shanghai


def sh(day: int, hour: int, minute: int = 0) -> datetime:
    """November `day` 2026 at hour:minute Shanghai time, as UTC."""
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC) - timedelta(hours=8)


def test_the_default_window_has_a_lunch_break() -> None:
    w = CallingWindow.parse("09:00-12:00,14:00-20:00")
    assert not w.allows(sh(23, 8, 59), SH)
    assert w.allows(sh(23, 9, 0), SH) and w.allows(sh(23, 11, 59), SH)
    assert not w.allows(sh(23, 12, 0), SH) and not w.allows(sh(23, 13, 30), SH)
    assert w.allows(sh(23, 14, 0), SH) and not w.allows(sh(23, 20, 0), SH)
    assert w.next_open(sh(23, 12, 30), SH) == sh(23, 14)
    assert w.next_open(sh(23, 21), SH) == sh(24, 9)


def test_weekdays_and_holidays_close_whole_days() -> None:
    w = CallingWindow.parse("09:00-20:00", "mon-fri", "2026-11-25")
    assert w.allows(sh(24, 10), SH)  # Tuesday
    assert not w.allows(sh(25, 10), SH)  # a holiday
    assert not w.allows(sh(28, 10), SH) and not w.allows(sh(29, 10), SH)  # the weekend
    assert w.next_open(sh(24, 21), SH) == sh(26, 9)  # over the holiday
    assert w.next_open(sh(27, 21), SH) == sh(30, 9)  # over the weekend
    assert parse_days("fri-mon") == {4, 5, 6, 0}
    with pytest.raises(ValueError, match="calling_days"):
        parse_days("weekdays")
    with pytest.raises(ValueError, match="holidays"):
        CallingWindow.parse("09:00-20:00", "", "25/11/2026")


def test_the_window_is_the_leads_local_time() -> None:
    w = CallingWindow.parse("09:00-12:00")
    at = datetime(2026, 11, 23, 15, tzinfo=UTC)  # 23:00 in Shanghai, 10:00 in New York
    assert w.allows(at, "America/New_York") and not w.allows(at, SH)


def test_a_night_range_belongs_to_the_day_it_began() -> None:
    w = CallingWindow.parse("22:00-02:00", "fri")  # Friday night, into Saturday morning
    assert w.allows(sh(27, 23), SH) and w.allows(sh(28, 1), SH)
    assert not w.allows(sh(28, 23), SH)  # Saturday night is not Friday's
    assert not w.allows(sh(27, 1), SH)  # Friday 01:00 belongs to Thursday night


def test_a_campaign_overrides_hours_and_days_not_holidays() -> None:
    node = CallingWindow.parse("09:00-20:00", "mon-sun", "2026-11-25")
    camp = node.override("10:00-11:00", "mon-fri")
    assert camp.allows(sh(23, 10, 30), SH) and not camp.allows(sh(23, 9, 30), SH)
    assert not camp.allows(sh(28, 10, 30), SH) and not camp.allows(sh(25, 10, 30), SH)
    assert node.override(None, None) == node


def test_cap_boundaries_are_the_local_day_and_monday() -> None:
    day, week = FrequencyCap.day_and_week_start(sh(26, 10), SH)  # Thursday
    assert (day, week) == (sh(26, 0), sh(23, 0))
    with pytest.raises(ValueError):
        FrequencyCap(-1, 3)
    assert not FrequencyCap(0, 0).active


def test_retry_policy_from_config() -> None:
    assert DEFAULT.next_try(Disposition.BUSY, 1, 3) == timedelta(minutes=30)
    assert DEFAULT.next_try(Disposition.NO_ANSWER, 1, 3) == timedelta(hours=2)
    assert DEFAULT.next_try(Disposition.COMPLETED, 1, 3) == timedelta(hours=2)
    assert DEFAULT.next_try(Disposition.BUSY, 3, 3) is None  # attempts used up
    p = RetryPolicy.parse("no_answer=1d/2, busy=90s")
    assert p.next_try(Disposition.NO_ANSWER, 1, 5) == timedelta(days=1)
    assert p.next_try(Disposition.NO_ANSWER, 2, 5) is None  # its own limit
    assert p.next_try(Disposition.BUSY, 4, 5) == timedelta(seconds=90)
    with pytest.raises(ValueError, match="unknown disposition"):
        RetryPolicy.parse("answering_machine=1h")
    # what the call screening hears: an invalid number is never tried again, powered off later
    assert DEFAULT.next_try(Disposition.INVALID_NUMBER, 1, 3) is None
    assert DEFAULT.next_try(Disposition.POWERED_OFF, 1, 3) == timedelta(hours=4)
    assert DEFAULT.next_try(Disposition.VOICEMAIL, 1, 3) == timedelta(hours=4)
    with pytest.raises(ValueError, match="no_answer=2h/5"):
        RetryPolicy.parse("busy=soon")


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    async def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.t += s


def test_token_bucket_holds_the_rate() -> None:
    clock = FakeClock()
    b = TokenBucket(2.0, clock=clock)  # 2 a second, burst 2
    waits = [b.reserve() for _ in range(6)]
    assert waits == [0.0, 0.0, 0.5, 1.0, 1.5, 2.0]  # served in order, 2 a second
    clock.t += 10
    assert b.reserve() == 0.0
    assert TokenBucket(0).reserve() == 0.0  # no limit


async def test_pacer_node_and_trunk_limits() -> None:
    clock = FakeClock()
    pacer = Pacer(
        PacingConfig(calls_per_second=10, trunk_calls_per_second=1, trunk_max_concurrent=2),
        clock=clock,
        sleep=clock.sleep,
    )
    start = clock.t
    for _ in range(3):
        await pacer.wait_turn("carrier")
    assert clock.t - start == pytest.approx(2.0)  # the trunk's 1 a second rules
    assert pacer.take("carrier", 5) == 2 and pacer.free("carrier") == 0
    assert pacer.take("other", 5) == 2  # another trunk has its own channels
    pacer.give("carrier")
    assert pacer.free("carrier") == 1


def test_dnc_numbers_match_however_written() -> None:
    assert dnc.normalize("+86 138-0013-8000") == dnc.normalize("0086 13800138000")
    assert dnc.normalize("13800138000") == dnc.normalize("138 0013 8000")
    stored = dnc.normalize("13800138000")
    assert "13800138000" in dnc.forms(stored)  # an entry stored before E.164
    assert stored in dnc.forms("13800138000")  # a lead stored before E.164


def test_a_holiday_date_parses() -> None:
    assert CallingWindow.parse("09:00-10:00", "", "2026-10-01").holidays == {date(2026, 10, 1)}
