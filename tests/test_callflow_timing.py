"""TurnClock on a hand-driven clock: stream time -> wall time, endpoints matched to finals by
order (no float equality), reply latency from the true end of speech."""

from __future__ import annotations

import pytest

from callflow.continuation import TurnJoiner
from callflow.results import TurnRecord
from callflow.timing import TurnClock


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def pushed(clock: Clock, turn_clock: TurnClock, seconds: float) -> None:
    """Push `seconds` of 20 ms frames, 20 ms of wall time apart."""
    for _ in range(round(seconds / 0.02)):
        clock.now += 0.02
        turn_clock.frame_pushed()


def test_stream_time_maps_to_the_wall_time_of_its_frame() -> None:
    clock = Clock()
    tc = TurnClock(clock)
    pushed(clock, tc, 2.0)
    assert tc.wall_at(1.0) == pytest.approx(101.0)
    assert tc.wall_at(0.0) == pytest.approx(100.02)  # the first frame
    assert tc.wall_at(9.0) == clock.now  # not pushed yet: now


def test_endpoints_pair_with_finals_by_order_not_by_equality() -> None:
    clock = Clock()
    tc = TurnClock(clock)
    pushed(clock, tc, 1.5)
    tc.speech_ended(0.1 + 0.2)  # 0.30000000000000004: a float that equals no literal
    clock.now += 0.05
    tc.speech_ended(0.9)  # the next utterance's endpoint, before the first final
    clock.now += 0.1
    first = tc.final(0.3)
    assert first.endpoint == pytest.approx(101.5)  # its own endpoint, not the later one
    assert first.final == pytest.approx(101.65) and first.speech_end == pytest.approx(100.3)
    second = tc.final(0.9)
    assert second.endpoint == pytest.approx(101.55)
    assert tc.final(1.2).endpoint == clock.now  # no endpoint seen: the final's own time


def test_stale_endpoints_are_dropped() -> None:
    clock = Clock()
    tc = TurnClock(clock)
    tc.speech_ended(0.5)  # a final that never came
    clock.now += 1.0
    tc.speech_ended(2.0)
    clock.now += 1.0
    assert tc.final(2.0).endpoint == pytest.approx(101.0)


def test_reply_latency_counts_from_the_end_of_speech() -> None:
    clock = Clock()
    tc = TurnClock(clock)
    turn = TurnRecord(speaker="callee", text="多少钱")
    tc.await_reply(turn, speech_end=100.0)
    clock.now = 100.75
    tc.reply_queued()
    assert turn.latency_ms == 750.0
    clock.now = 101.0
    tc.reply_queued()  # a second line of the same reply changes nothing
    assert turn.latency_ms == 750.0
    silent = TurnRecord(speaker="callee", text="嗯")
    tc.await_reply(silent, speech_end=101.0)
    tc.no_reply()
    tc.reply_queued()
    assert silent.latency_ms is None


def test_joiner_joins_within_the_window_while_undoable() -> None:
    joiner = TurnJoiner(1.0)
    assert joiner.hear("别再", 0.3, 0.8, undoable=False).continues is None
    joined = joiner.hear("打了", 1.3, 1.8, undoable=True)
    assert (joined.text, joined.continues) == ("别再，打了", "别再")
    assert joiner.hear("好的", 5.0, 5.5, undoable=True).continues is None  # too late
    assert joiner.hear("对", 5.6, 5.9, undoable=False).continues is None  # not undoable
