"""In-memory `Telephony` for tests of call logic: scripted callees, no processes, no SIP.

Event sequences mirror the real `WorkerPool` (see tests/test_telephony_fake.py, which runs
the same scenarios against both)::

    fake = FakeTelephony()
    fake.script(busy())                    # next dial: RINGING, then ENDED(BUSY, 486)
    fake.script_uri(uri, answers(ring_s=2))  # every dial of uri: a `Scenario`
    call = await fake.dial(DialRequest("sip:1380001@sim"))
    fake.calls[-1].push_audio(pcm)         # the callee speaks (split into 20 ms frames)
    fake.calls[-1].played                  # robot audio the callee has "heard"

Playout: with ``auto_play=True`` (default) queued robot audio counts as played at once, so
marks fire immediately. With ``auto_play=False`` the test drives time: `FakeCall.advance(ms)`
plays that much audio and fires the marks it passes; `clear_audio()` reports what was dropped;
`pause_audio()` holds the rest until `resume_audio()`; `cue(name)` is answered with
`PlayoutStarted` when the audio after it first plays.

Capacity: with ``max_calls`` set, `free_slots` counts what is left (0 once closed) and a dial
beyond it raises `TelephonyBusyError` at once, as the pool does.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from core.audio import FRAME_BYTES, pcm_bytes, pcm_ms
from core.vocab import Disposition
from telephony.base import (
    CallEvent,
    CallState,
    DialRequest,
    Dtmf,
    PlayoutCleared,
    PlayoutMark,
    PlayoutPaused,
    PlayoutStarted,
    Progress,
    TelephonyBusyError,
    TransferEnded,
)
from telephony.channel import Channel
from telephony.media import disposition_for_code

_PHRASES = {
    401: "Unauthorized",
    407: "Proxy Authentication Required",  # rejected(407): the trunk refused us
    403: "Forbidden",
    404: "Not Found",
    480: "Temporarily Unavailable",
    486: "Busy Here",
}


@dataclass(frozen=True, slots=True)
class Scenario:
    """How the scripted callee treats a dial (see `answers`, `busy`, `rejected`, ...)."""

    answer: bool = True
    ring_s: float = 0.0  # RINGING -> answered or ended
    disposition: Disposition | None = None  # when not answered
    sip_code: int | None = None
    reason: str = ""
    ringing: bool = True  # send Progress(RINGING, 180) first
    hangup_by: str | None = None


def answers(ring_s: float = 0.0) -> Scenario:
    return Scenario(ring_s=ring_s)


def busy(ring_s: float = 0.0) -> Scenario:
    return Scenario(False, ring_s, Disposition.BUSY, 486, "Busy Here", hangup_by="remote")


def rejected(code: int = 603, ring_s: float = 0.0) -> Scenario:
    end = disposition_for_code(code)
    return Scenario(False, ring_s, end, code, _PHRASES.get(code, "Decline"), hangup_by="remote")


def no_answer(ring_s: float = 0.0) -> Scenario:
    """The ring timeout expires (after ``ring_s`` of fake time, not the request's timeout)."""
    return Scenario(False, ring_s, Disposition.NO_ANSWER, 487, "ring timeout", hangup_by="local")


def fails(reason: str = "unreachable") -> Scenario:
    return Scenario(False, 0.0, Disposition.FAILED, None, reason, ringing=False)


class FakeCall:
    """A scripted call (implements `CallHandle`), plus test-side controls."""

    def __init__(self, owner: FakeTelephony, request: DialRequest | None) -> None:
        self.call_id = uuid.uuid4().hex
        self.request = request
        self.played = bytearray()  # robot audio the callee has heard
        self.dtmf_sent: list[str] = []
        self.transfers: list[tuple[str, str]] = []  # (target, mode) asked for
        # how a transfer ends: answered by default; a test sets another `TransferEnded`
        self.transfer_result = TransferEnded("refer", 200, True)
        self._owner = owner
        self._events: Channel[CallEvent] = Channel()
        self._audio: Channel[bytes] = Channel()
        self._pending = bytearray()
        self._queued = 0
        self._played_total = 0
        self._marks: deque[tuple[int, str]] = deque()
        self._cues: deque[tuple[int, str]] = deque()
        self.paused = False  # pause_audio(): advance() plays nothing until resume_audio()
        self.last_audio_t: float | None = None  # time.monotonic() of the last audio played
        self._ended: Progress | None = None
        self.answered = False

    # --- CallHandle ---

    def events(self) -> Channel[CallEvent]:
        return self._events

    def audio(self) -> Channel[bytes]:
        return self._audio

    def send_audio(self, pcm: bytes) -> None:
        if len(pcm) % 2:
            raise ValueError("PCM16 audio must be an even number of bytes")
        if self._ended is not None:
            return
        self._pending += pcm
        self._queued += len(pcm)
        if self._owner.auto_play:
            self.advance_all()

    def mark(self, name: str) -> None:
        if self._ended is not None:
            return
        if self._played_total >= self._queued:
            self._events.put(PlayoutMark(name))
        else:
            self._marks.append((self._queued, name))

    def clear_audio(self) -> None:
        if self._ended is not None:
            return
        dropped = len(self._pending)
        self._pending.clear()
        self._played_total = self._queued
        self._marks.clear()
        self._cues.clear()
        self.paused = False
        self._events.put(PlayoutCleared(pcm_ms(dropped), self.last_audio_t))

    def pause_audio(self) -> None:
        if self._ended is None:
            self.paused = True
            self._events.put(PlayoutPaused(pcm_ms(self._pending), self.last_audio_t))

    def resume_audio(self) -> None:
        if self._ended is None and self.paused:
            self.paused = False
            if self._owner.auto_play:
                self.advance_all()

    def cue(self, name: str) -> None:
        if self._ended is None:
            self._cues.append((self._queued, name))

    def send_dtmf(self, digits: str) -> None:
        self.dtmf_sent.extend(digits)

    def transfer(self, target: str, mode: str = "auto") -> None:
        """Record the transfer and answer at once with `transfer_result`."""
        if self._ended is None:
            self.transfers.append((target, mode))
            self._events.put(self.transfer_result)

    async def hangup(self) -> None:
        if self._ended is not None:
            return
        await self._owner._stop_script(self)
        if self.answered:
            self._end(Disposition.COMPLETED, 200, "OK", "local")
        elif self.request is not None:
            self._end(Disposition.NO_ANSWER, 487, "Request Terminated", "local")
        else:
            self._end(Disposition.REJECTED, 603, "Decline", "local")

    @property
    def ended(self) -> Progress | None:
        return self._ended

    # --- test side ---

    @property
    def queued_ms(self) -> int:
        return pcm_ms(self._pending)

    def advance(self, ms: int) -> None:
        """Play ``ms`` of queued robot audio (none while paused); fire the marks it passes
        and report the cues whose audio it starts (`PlayoutStarted`)."""
        n = 0 if self.paused else min(len(self._pending), pcm_bytes(ms / 1000))
        if n:
            self.last_audio_t = time.monotonic()
            while self._cues and self._cues[0][0] < self._played_total + n:
                self._events.put(PlayoutStarted(self._cues.popleft()[1], self.last_audio_t))
        self.played += self._pending[:n]
        del self._pending[:n]
        self._played_total += n
        while self._marks and self._marks[0][0] <= self._played_total:
            self._events.put(PlayoutMark(self._marks.popleft()[1]))

    def advance_all(self) -> None:
        self.advance(pcm_ms(self._pending) + 1)

    def push_audio(self, pcm: bytes) -> None:
        """The callee speaks: delivered on `audio()` as 20 ms frames (last one padded)."""
        for i in range(0, len(pcm), FRAME_BYTES):
            frame = pcm[i : i + FRAME_BYTES]
            self._audio.put(frame + bytes(FRAME_BYTES - len(frame)))

    def press(self, digits: str) -> None:
        for digit in digits:
            self._events.put(Dtmf(digit))

    def remote_hangup(self) -> None:
        """The callee hangs up (BYE when answered, CANCEL while ringing)."""
        if self._ended is not None:
            return
        self._owner._cancel_script(self)
        if self.answered:
            self._end(Disposition.COMPLETED, 200, "Normal call clearing", "remote")
        else:
            self._end(Disposition.NO_ANSWER, 487, "Request Terminated", "remote")

    # --- internals ---

    def _progress(self, state: CallState, code: int, reason: str) -> None:
        if self._ended is None:
            self.answered = self.answered or state is CallState.ANSWERED
            self._events.put(Progress(state, code, reason))

    def _end(self, end: Disposition, code: int | None, reason: str, by: str | None) -> None:
        if self._ended is not None:
            return
        self._ended = Progress(CallState.ENDED, code, reason, end, by)
        self._events.put(self._ended)
        self._events.close()
        self._audio.close()


class FakeInboundCall(FakeCall):
    """A scripted inbound call (implements `InboundCall`); created by `ring_in()`."""

    def __init__(self, owner: FakeTelephony, to_user: str, from_uri: str) -> None:
        super().__init__(owner, None)
        self.to_user = to_user
        self.from_uri = from_uri

    async def answer(self, *, accept_transfer: bool = False) -> None:
        if not self.answered:
            self._progress(CallState.ANSWERED, 200, "OK")

    async def early_media(self) -> None:
        """183 with SDP: nothing to do in memory (audio sent is "heard" either way)."""

    async def reject(self, code: int = 486) -> None:
        if self._ended is None and not self.answered:
            self._end(disposition_for_code(code), code, _PHRASES.get(code, "Decline"), "local")


class FakeTelephony:
    """Scripted `Telephony`: every dial follows the next scripted `Scenario` (or the default)."""

    def __init__(
        self,
        *,
        scenario: Scenario | None = None,
        auto_play: bool = True,
        max_calls: int | None = None,
    ) -> None:
        self.default = scenario or answers()
        self.auto_play = auto_play
        self.max_calls = max_calls  # like the pool's capacity: dial() raises TelephonyBusyError
        self.calls: list[FakeCall] = []  # every dialed call, in order
        self.inbound: list[FakeInboundCall] = []
        self.closed = False
        self._script: deque[Scenario] = deque()
        self._by_uri: dict[str, Scenario] = {}
        self._incoming: Channel[FakeInboundCall] = Channel()
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def script(self, *scenarios: Scenario) -> None:
        """Scenarios for the next dials, in order; then the default again."""
        self._script.extend(scenarios)

    def script_uri(self, uri: str, scenario: Scenario) -> None:
        """Every dial of ``uri`` gets ``scenario`` (takes precedence over `script`)."""
        self._by_uri[uri] = scenario

    def ring_in(
        self, to_user: str = "13800000001", from_uri: str = "sip:caller@sim"
    ) -> FakeInboundCall:
        call = FakeInboundCall(self, to_user, from_uri)
        self.inbound.append(call)
        call._progress(CallState.RINGING, 180, "Ringing")
        self._incoming.put(call)
        return call

    # --- Telephony ---

    async def start(self) -> None:
        self.closed = False

    async def close(self) -> None:
        self.closed = True
        self._incoming.close()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for call in [*self.calls, *self.inbound]:
            await call.hangup()

    @property
    def free_slots(self) -> int:
        """Like the pool's: calls `dial()` can place now (``max_calls`` None: 1000)."""
        if self.closed:
            return 0
        live = sum(c.ended is None for c in [*self.calls, *self.inbound])
        return max(0, (1000 if self.max_calls is None else self.max_calls) - live)

    async def dial(self, request: DialRequest) -> FakeCall:
        if self.closed:
            raise RuntimeError("telephony is closed")
        if self.free_slots <= 0:
            raise TelephonyBusyError(f"all {self.max_calls} call slots are busy")
        scenario = self._by_uri.get(request.uri) or (
            self._script.popleft() if self._script else self.default
        )
        call = FakeCall(self, request)
        self.calls.append(call)
        self._spawn(call, self._run(call, scenario))
        return call

    async def incoming(self) -> FakeInboundCall:
        try:
            return await self._incoming.get()
        except EOFError:
            raise RuntimeError("telephony is closed") from None

    async def __aenter__(self) -> FakeTelephony:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- internals ---

    async def _stop_script(self, call: FakeCall) -> None:
        task = self._tasks.get(call.call_id)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def _spawn(self, call: FakeCall, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro, name=f"fake.call[{call.call_id}].script")
        self._tasks[call.call_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(call.call_id, None))

    def _cancel_script(self, call: FakeCall) -> None:
        """Stop a call's script; the task stays owned until done (`close()` awaits it)."""
        task = self._tasks.get(call.call_id)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _run(self, call: FakeCall, scenario: Scenario) -> None:
        if scenario.ringing:
            call._progress(CallState.RINGING, 180, "Ringing")
        await asyncio.sleep(scenario.ring_s)
        if scenario.answer:
            call._progress(CallState.ANSWERED, 200, "OK")
        else:
            end = scenario.disposition or Disposition.FAILED
            call._end(end, scenario.sip_code, scenario.reason, scenario.hangup_by)
