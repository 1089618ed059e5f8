"""pjsua2 subclasses of the media worker: the per-call PCM tap, the call and the account.

Their callbacks run inside pjsua2 (the main loop for calls and accounts, the pjmedia clock
thread for ports) and hand everything to the worker through `WorkerCallbacks`; an exception
never escapes a SWIG director. ``TapPort`` reads and writes frame buffers through ctypes when
``fast_vectors_work()`` confirms this build's std::vector layout (about 2x cheaper per frame
than ``bytes(frame.buf)``).
"""

from __future__ import annotations

import ctypes
import functools
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import pjsua2 as pj

from core.audio import FRAME_BYTES
from telephony import ipc
from telephony.legs import EdgeState
from telephony.media import SILENCE, Outbox, Playout

log = logging.getLogger("telephony.worker")
_FrameFn = Callable[["TapPort", "Tap", Any], None]  # a callback body, given the bound tap
_Callback = Callable[["TapPort", Any], None]  # what SWIG calls


class WorkerCallbacks(Protocol):
    """What the pjsua2 objects call back into (``telephony.worker.Worker``)."""

    outbox: Outbox

    def on_call_state(self, call: PjCall, state: int, code: int, reason: str) -> None: ...

    def on_media_state(self, call: PjCall) -> None: ...

    def on_incoming(self, acc: PjAccount, prm: Any) -> None: ...

    def on_reg_state(self, acc: PjAccount, code: int, reason: str) -> None: ...

    def on_transfer_request(self, call: PjCall, prm: Any) -> None: ...

    def on_transfer_status(self, call: PjCall, code: int, final: bool) -> bool: ...


_VecHead = ctypes.c_void_p * 2  # libstdc++ std::vector: begin, end, end_of_storage


def _read_vector_fast(vec: Any) -> bytes:
    begin, end = _VecHead.from_address(int(vec.this))
    if not begin or not end:
        return b""
    return ctypes.string_at(begin, end - begin)


def _vector_data_address(vec: Any) -> int:
    begin = _VecHead.from_address(int(vec.this))[0]
    return int(begin or 0)


def fast_vectors_work() -> bool:
    """Check once that the ctypes view of pj.ByteVector matches this build's layout."""
    try:
        probe = pj.ByteVector(b"\x01\x02\x03")
        if _read_vector_fast(probe) != b"\x01\x02\x03" or _read_vector_fast(pj.ByteVector()):
            return False
        ctypes.memmove(_vector_data_address(probe), b"\x07", 1)
        return list(probe) == [7, 2, 3]
    except Exception:  # any failure means: use the slow path
        return False


_PINNED: set[int] = set()


def _pin_thread_state() -> None:
    """Keep a Python thread state for the current (pjmedia clock) thread for good.

    SWIG's callback wrapper takes the GIL with PyGILState_Ensure/Release; on a thread that
    Python did not create, each pair builds and tears down a thread state (tens of us, twice
    per frame per call). One extra Ensure that is never released keeps it alive.
    """
    ctypes.pythonapi.PyGILState_Ensure()
    _PINNED.add(threading.get_ident())


def _clock_callback(what: str) -> Callable[[_FrameFn], _Callback]:
    """Wrap a `TapPort` frame callback (pjmedia clock thread): skip an unbound port, keep the
    thread's Python state, and never let an exception escape into SWIG."""

    def wrap(fn: _FrameFn) -> _Callback:
        @functools.wraps(fn)
        def run(self: TapPort, frame: Any) -> None:
            try:
                tap = self.tap  # one read: the main thread may rebind the port meanwhile
                if tap is None:
                    return
                if threading.get_ident() not in _PINNED:
                    _pin_thread_state()
                fn(self, tap, frame)
            except Exception:
                log.exception("frame %s failed", what)

        return run

    return wrap


@dataclass(frozen=True, slots=True)
class Tap:
    """What a bound `TapPort` serves: one call's number and its robot audio."""

    num: int
    playout: Playout


class TapPort(pj.AudioMediaPort):
    """Per-call PCM tap: callee frames out to the brain, robot frames in from `Playout`.

    A port is bound to one call at a time (`tap`) and lives as long as the endpoint
    (`PortPool`): the bridge calls put_frame on every port every tick, connected or not, so an
    unbound port answers nothing, and a port is never destroyed while the bridge runs (see
    `PortPool` for why).
    """

    def __init__(self, outbox: Outbox, fast: bool) -> None:
        super().__init__()
        self.tap: Tap | None = None
        self._outbox = outbox
        self._fast = fast
        self._tx = pj.ByteVector(SILENCE)
        self._silence = pj.ByteVector(SILENCE)
        self._tx_addr = _vector_data_address(self._tx) if fast else 0

    @_clock_callback("receive")
    def onFrameReceived(self, tap: Tap, frame: Any) -> None:
        pcm = _read_vector_fast(frame.buf) if self._fast else bytes(frame.buf)
        self._outbox.put(ipc.encode_audio(tap.num, pcm or SILENCE))

    @_clock_callback("request")
    def onFrameRequested(self, tap: Tap, frame: Any) -> None:
        playout = tap.playout
        data, marks = playout.pull()
        if data is None:
            frame.buf = self._silence
        elif self._fast:
            ctypes.memmove(self._tx_addr, data, FRAME_BYTES)
            frame.buf = self._tx
        else:
            frame.buf = pj.ByteVector(data)
        frame.size = FRAME_BYTES
        frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
        if marks:
            self._outbox.marks_done(tap.num, marks)
        if playout.started:  # only this (clock) thread touches it
            for name, t in playout.started:
                self._outbox.send(tap.num, ipc.Started(name, t))
            playout.started.clear()


class PortPool:
    """The worker's `TapPort`s: reused call after call, destroyed only after libDestroy().

    Destroying a port while the bridge runs corrupts memory. Since pjmedia 2.14 the bridge
    removes a port asynchronously, on its next clock tick, so the C++ destructor returns while
    the bridge may still call the port; and SWIG releases the GIL inside that destructor, so the
    clock thread can enter the Python object that is being deallocated (its reference count
    goes 0 -> 1 -> 0: a second dealloc, a corrupted pymalloc free list, a segfault later in
    ``_PyObject_Malloc``). A pool never destroys: a finished call's port is unbound, rests
    `grace_s` (the bridge forgets its last connections) and serves a later call.
    """

    def __init__(self, outbox: Outbox, fast: bool, fmt: Any, grace_s: float) -> None:
        self._outbox = outbox
        self._fast = fast
        self._fmt = fmt
        self._grace_s = grace_s
        self._resting: deque[tuple[float, TapPort]] = deque()
        self.ports: list[TapPort] = []  # every port made; kept until `forget`

    def take(self, num: int, playout: Playout, now: float) -> TapPort:
        """A port bound to call `num`: a rested one, else a new one on the bridge."""
        if self._resting and now - self._resting[0][0] >= self._grace_s:
            port = self._resting.popleft()[1]
        else:
            port = TapPort(self._outbox, self._fast)
            port.createPort(f"tap{len(self.ports)}", self._fmt)
            self.ports.append(port)
        port.tap = Tap(num, playout)
        return port

    def give_back(self, port: TapPort, now: float) -> None:
        port.tap = None
        self._resting.append((now, port))

    def settled(self, now: float) -> bool:
        """True once every returned port has rested (no call's connection is left)."""
        return not self._resting or now - self._resting[-1][0] >= self._grace_s

    def forget(self) -> None:
        """After libDestroy(): drop the ports without running their C++ destructors, which
        would call into the destroyed library."""
        for port in self.ports:
            port.this.disown()
        self.ports.clear()
        self._resting.clear()


class PjCall(pj.Call):
    """One pjsua2 call; its callbacks run on the main thread inside libHandleEvents."""

    def __init__(
        self, worker: WorkerCallbacks, acc: pj.Account, num: int, outbound: bool, call_id: int
    ) -> None:
        super().__init__(acc, call_id)
        self.worker = worker
        self.account = acc  # a transfer's new leg goes out on the same account
        self.edge = EdgeState()  # transfer and recording (telephony.legs)
        self.num = num
        self.outbound = outbound
        self.answered = False
        self.ringing_reported = False
        self.local_hangup = False
        self.ring_timeout = False
        self.got_response = False
        self.challenged = False  # the trunk asked for credentials (401/407) on this call
        self.remote_final: int | None = None
        self.deadline: float | None = None
        self.ended = False
        self.port: TapPort | None = None

    def onCallState(self, prm: Any) -> None:
        try:
            self._note_response(prm.e)  # a final answer reaches us here before onCallTsxState
            ci = self.getInfo()
            self.worker.on_call_state(self, ci.state, ci.lastStatusCode, ci.lastReason)
        except Exception:
            log.exception("call state handling failed", extra={"call": self.num})

    def onCallTsxState(self, prm: Any) -> None:
        try:
            self._note_response(prm.e)
        except Exception:
            log.exception("transaction state handling failed", extra={"call": self.num})

    def _note_response(self, event: Any) -> None:
        """Remember responses received for our INVITE (tells 'remote said 486' from a timeout)."""
        if not self.outbound or event.type != pj.PJSIP_EVENT_TSX_STATE:
            return
        body = event.body.tsxState
        if body.type != pj.PJSIP_EVENT_RX_MSG:
            return
        tsx = body.tsx
        if tsx.role == pj.PJSIP_ROLE_UAC and tsx.method == "INVITE":
            self.got_response = True
            code = tsx.statusCode
            if code in (401, 407):
                self.challenged = True
            # a provisional answer to the re-sent, authenticated INVITE: the challenge passed
            self.remote_final = code if code >= 300 else None

    def onCallMediaState(self, prm: Any) -> None:
        try:
            self.worker.on_media_state(self)
        except Exception:
            log.exception("media state handling failed", extra={"call": self.num})

    def onCallTransferRequest(self, prm: Any) -> None:
        try:
            self.worker.on_transfer_request(self, prm)
        except Exception:
            prm.statusCode = 500
            log.exception("transfer request handling failed", extra={"call": self.num})

    def onCallTransferStatus(self, prm: Any) -> None:
        try:
            prm.cont = self.worker.on_transfer_status(
                self, int(prm.statusCode), bool(prm.finalNotify)
            )
        except Exception:
            log.exception("transfer status handling failed", extra={"call": self.num})

    def onDtmfDigit(self, prm: Any) -> None:
        try:
            self.worker.outbox.send(self.num, ipc.DtmfReceived(str(prm.digit)))
        except Exception:
            log.exception("dtmf handling failed", extra={"call": self.num})


class PjAccount(pj.Account):
    def __init__(self, worker: WorkerCallbacks) -> None:
        super().__init__()
        self.worker = worker

    def onIncomingCall(self, prm: Any) -> None:
        try:
            self.worker.on_incoming(self, prm)
        except Exception:
            log.exception("incoming call handling failed")

    def onRegState(self, prm: Any) -> None:
        try:
            self.worker.on_reg_state(self, prm.code, prm.reason)
        except Exception:
            log.exception("registration state handling failed")
