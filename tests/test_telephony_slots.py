"""A pool worker's call slots: a transfer that may bridge holds a second one (the agent's leg is
a pjsua call of the same worker), so the dialer never fills the slot the leg needs."""

from __future__ import annotations

from types import SimpleNamespace

from core.vocab import Disposition
from telephony import ipc
from telephony.pool import PoolCall, _Worker

AGENT = "sip:8001@127.0.0.1"


def worker_with_calls(*nums: int) -> _Worker:
    w = _Worker(0, [], 4, 1.0, on_incoming=lambda _call: None)
    w.proc = SimpleNamespace(running=True, write=lambda _data: None)  # type: ignore[assignment]
    for num in nums:
        w.calls[num] = PoolCall(w, num)
    return w


def ended(w: _Worker, num: int) -> None:
    w._call_event(w.calls[num], num, ipc.Ended(200, "OK", Disposition.COMPLETED, "remote"))


def test_a_bridged_transfer_holds_a_slot_until_its_call_ends() -> None:
    w = worker_with_calls(1, 2)
    assert w.free_slots == 2
    w.calls[1].transfer(AGENT, "auto")  # REFER first, a bridge if it is refused
    assert w.free_slots == 1
    w._call_event(w.calls[1], 1, ipc.TransferStatus("bridge", 200, True))
    assert w.free_slots == 1  # the agent's leg lives as long as the callee's call
    ended(w, 1)
    assert w.free_slots == 3  # both slots back


def test_a_transfer_without_a_leg_gives_its_slot_back() -> None:
    w = worker_with_calls(1, 2, 3)
    w.calls[1].transfer(AGENT, "auto")
    w._call_event(w.calls[1], 1, ipc.TransferStatus("refer", 200, True))  # REFER took it
    assert w.free_slots == 1
    w.calls[2].transfer(AGENT, "bridge")
    assert w.free_slots == 0
    w._call_event(w.calls[2], 2, ipc.TransferStatus("bridge", 486, False))  # agent busy
    assert w.free_slots == 1
    w.calls[3].transfer(AGENT, "refer")  # a plain REFER never places a leg
    assert w.free_slots == 1
    w.on_lost(-9)
    assert w.bridging == set() and w.calls == {}
