"""The trunk's pure parts: its settings, codec order, and the caller-ID pool's rotation and
health (on a fake clock). The real trunk is tests/test_trunk_kamailio.py's subject."""

from __future__ import annotations

import pytest

from core.vocab import Disposition
from telephony.base import CallState, Progress, trunk_rejected
from telephony.callerid import CallerIdPool
from telephony.trunk import TrunkSpec, TrunkSpecError, codec_priorities, parse_codecs

WHEEL_CODECS = ["speex/16000/1", "GSM/8000/1", "PCMU/8000/1", "PCMA/8000/1", "G722/16000/1"]


def test_codecs_follow_the_configured_order_and_the_rest_are_off() -> None:
    prefs = parse_codecs(" pcma, PCMU ,G.722,opus")  # opus: not in this wheel, ignored
    assert prefs == ("PCMA", "PCMU", "G722", "OPUS")
    prio = codec_priorities(WHEEL_CODECS, prefs)
    assert prio == {
        "PCMA/8000/1": 255,
        "PCMU/8000/1": 254,
        "G722/16000/1": 253,
        "speex/16000/1": 0,
        "GSM/8000/1": 0,
    }


def test_trunk_spec_round_trips_and_refuses_what_cannot_work() -> None:
    spec = TrunkSpec(
        name="c",
        transport="tcp",
        username="u",
        password="p",
        register=True,
        registrar="sip:10.0.0.1",
        codecs=("PCMU",),
    )
    assert TrunkSpec.from_json(spec.to_json()) == spec
    assert TrunkSpec.from_env({}) == TrunkSpec()
    assert spec.with_transport("sip:1@10.0.0.1") == "sip:1@10.0.0.1;transport=tcp"
    assert spec.with_transport("sip:1@h;transport=udp") == "sip:1@h;transport=udp"
    assert TrunkSpec().with_transport("sip:1@h") == "sip:1@h"
    with pytest.raises(TrunkSpecError, match="transport"):
        TrunkSpec(transport="sctp")
    with pytest.raises(TrunkSpecError, match="registration needs a username"):
        TrunkSpec(register=True, registrar="sip:h")
    with pytest.raises(TrunkSpecError, match="go together"):
        TrunkSpec(username="u")
    with pytest.raises(TrunkSpecError, match="registrar or domain"):
        TrunkSpec(register=True, username="u", password="p")


def test_trunk_rejected_reads_the_end_of_a_call() -> None:
    refused = Progress(CallState.ENDED, 407, "Proxy Auth", Disposition.TRUNK_REJECTED, "remote")
    busy = Progress(CallState.ENDED, 486, "Busy Here", Disposition.BUSY, "remote")
    assert trunk_rejected(refused)
    assert not trunk_rejected(busy) and not trunk_rejected(None)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_caller_ids_rotate() -> None:
    pool = CallerIdPool(["021-1", "021-2", "021-3", "021-1", " "])  # duplicates, blanks dropped
    assert [pool.next() for _ in range(5)] == ["021-1", "021-2", "021-3", "021-1", "021-2"]


def test_an_unanswered_number_is_rested_then_returns_with_fresh_counts() -> None:
    clock = Clock()
    pool = CallerIdPool(["A", "B"], min_calls=4, min_answer_rate=0.3, rest_s=600, clock=clock)
    for _ in range(3):
        pool.record("A", Disposition.NO_ANSWER)
    pool.record("A", Disposition.COMPLETED)  # 1 of 4 answered: 25 % < 30 %
    for _ in range(4):
        pool.record("B", Disposition.COMPLETED)
    assert pool.resting() == ["A"]
    assert [pool.next() for _ in range(3)] == ["B", "B", "B"]
    clock.now += 601
    assert pool.resting() == []
    assert {pool.next(), pool.next()} == {"A", "B"}
    health = {h.number: h for h in pool.health()}
    assert (health["A"].calls, health["B"].calls, health["B"].answer_rate) == (0, 4, 1.0)


def test_calls_that_say_nothing_about_the_number_are_not_counted() -> None:
    pool = CallerIdPool(["A"], min_calls=1, min_answer_rate=0.5)
    for end in (Disposition.FAILED, Disposition.TRUNK_REJECTED, Disposition.WORKER_LOST, None):
        pool.record("A", end)
    pool.record("unknown", Disposition.NO_ANSWER)
    assert pool.health()[0].calls == 0 and pool.resting() == []


def test_every_number_resting_still_rotates() -> None:
    clock = Clock()
    pool = CallerIdPool(["A", "B"], min_calls=1, min_answer_rate=0.5, clock=clock)
    pool.record("A", Disposition.BUSY)
    pool.record("B", Disposition.REJECTED)
    assert pool.resting() == ["A", "B"]
    assert [pool.next(), pool.next(), pool.next()] == ["A", "B", "A"]


def test_a_pool_needs_numbers_and_sane_limits() -> None:
    with pytest.raises(ValueError):
        CallerIdPool([" "])
    with pytest.raises(ValueError):
        CallerIdPool(["A"], min_answer_rate=1.5)
