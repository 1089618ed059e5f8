"""Telephony interface: what the brain sees of a call.

Audio crossing this boundary is always signed 16-bit little-endian mono PCM at 8 kHz,
in 20 ms frames (160 samples, 320 bytes; defined in `core.audio`, re-exported here). Workers
know SIP/RTP and frames, nothing more. How a call ended is a `core.vocab.Disposition`.

A `Telephony` has a fixed number of call slots: a dialer reads `free_slots` and dials no more
than that; `dial()` on a full engine raises `TelephonyBusyError` at once.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

from core.audio import FRAME_BYTES, FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE
from core.vocab import Disposition

__all__ = [
    "FRAME_BYTES",
    "FRAME_MS",
    "FRAME_SAMPLES",
    "SAMPLE_RATE",
    "CallEvent",
    "CallHandle",
    "CallState",
    "DialRequest",
    "Disposition",
    "Dtmf",
    "InboundCall",
    "PlayoutCleared",
    "PlayoutMark",
    "PlayoutPaused",
    "PlayoutStarted",
    "Progress",
    "Telephony",
    "TelephonyBusyError",
    "TransferEnded",
    "TrunkRejectedError",
    "trunk_rejected",
]


class TelephonyBusyError(RuntimeError):
    """Every call slot is in use: `dial()` placed no call. Not the lead's fault: a dialer
    that honours `free_slots` never sees it, and one that does must not count it as a try."""


class TrunkRejectedError(TelephonyBusyError):
    """The trunk refused our credentials (or registration) lately: `dial()` placed no call and
    the engine rests the trunk a while (`free_slots` is 0 meanwhile). A busy pool to a dialer:
    release the claim, count no attempt. The message names the trunk and the SIP code."""


def trunk_rejected(progress: Progress | None) -> bool:
    """True when a call ended because the trunk refused us (`Disposition.TRUNK_REJECTED`: a
    401/407 final, or a 403 to our credentials), not because of the callee. A dialer treats
    it like `TrunkRejectedError`: the claim is released and no attempt is counted."""
    return progress is not None and progress.end_reason == Disposition.TRUNK_REJECTED


class CallState(enum.StrEnum):
    """Call progress as the dialer and the call flow see it."""

    DIALING = "dialing"
    RINGING = "ringing"
    ANSWERED = "answered"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class Progress:
    """A call-progress event (ringing, answered, ended)."""

    state: CallState
    sip_code: int | None = None
    reason: str = ""  # SIP reason phrase or a short error text
    end_reason: Disposition | None = None  # set when state is ENDED
    hangup_by: str | None = None  # "local" | "remote" | None, when state is ENDED


@dataclass(frozen=True, slots=True)
class PlayoutMark:
    """The worker has played every frame queued before `mark(name)`."""

    name: str


@dataclass(frozen=True, slots=True)
class PlayoutCleared:
    """`clear_audio()` took effect; `dropped_ms` of queued robot audio was never played;
    `last_audio_t` (``time.monotonic``, host-wide) is when the last robot frame was sent."""

    dropped_ms: int
    last_audio_t: float | None = field(default=None, compare=False)  # a stamp, not a value


@dataclass(frozen=True, slots=True)
class PlayoutPaused:
    """`pause_audio()` took effect: `held_ms` of robot audio waits for `resume_audio()`;
    `last_audio_t` (``time.monotonic``) is when the last robot frame was sent."""

    held_ms: int
    last_audio_t: float | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class PlayoutStarted:
    """The first robot audio queued after `cue(name)` went out on the line at `t`
    (``time.monotonic``, host-wide): where the callee starts hearing a robot line."""

    name: str
    t: float


@dataclass(frozen=True, slots=True)
class Dtmf:
    digit: str


@dataclass(frozen=True, slots=True)
class TransferEnded:
    """The outcome of `transfer()`: how it was done (``mode``: "refer" or "bridge", a
    `core.vocab.TransferMode`), the SIP code that settled it (the REFER's NOTIFY sipfrag, or
    the agent leg's final answer; 0: no answer at all) and whether the agent answered. After a
    bridged transfer the robot's leg carries the callee and agent: keep it up."""

    mode: str
    code: int
    answered: bool


CallEvent = (
    Progress | PlayoutMark | PlayoutCleared | PlayoutPaused | PlayoutStarted | Dtmf | TransferEnded
)


@dataclass(slots=True)
class DialRequest:
    uri: str  # e.g. "sip:13800000001@127.0.0.1:5070"
    username: str | None = None  # digest credentials, optional
    password: str | None = None
    ring_timeout_s: float = 30.0
    headers: dict[str, str] = field(default_factory=dict)
    # the From user (our number shown to the callee); None: the engine's caller-ID pool, if any
    caller_id: str | None = None
    # record both directions into this folder (callee.wav, robot.wav); None: no recording
    record_dir: str | None = None


class CallHandle(Protocol):
    """One live call. Sync methods never block; they enqueue towards the worker."""

    call_id: str

    def events(self) -> AsyncIterator[CallEvent]:
        """Progress, playout and DTMF events, in order; ends after Progress(ENDED)."""
        ...

    def audio(self) -> AsyncIterator[bytes]:
        """The callee's audio, 20 ms PCM16 frames; ends when the call ends."""
        ...

    def send_audio(self, pcm: bytes) -> None:
        """Queue robot audio (any length, multiple of 2 bytes) for playout."""
        ...

    def mark(self, name: str) -> None:
        """Ask for PlayoutMark(name) once everything queued so far has been played."""
        ...

    def clear_audio(self) -> None:
        """Drop queued robot audio now (barge-in); answered with PlayoutCleared."""
        ...

    def pause_audio(self) -> None:
        """Hold queued robot audio (the line goes quiet) until `resume_audio` or
        `clear_audio`; answered with PlayoutPaused."""
        ...

    def resume_audio(self) -> None:
        """Play held robot audio on from where `pause_audio` stopped it."""
        ...

    def cue(self, name: str) -> None:
        """Ask for PlayoutStarted(name, t) when the next audio queued goes out."""
        ...

    def send_dtmf(self, digits: str) -> None:
        """Send DTMF keys (RFC 4733 telephone events) to the far end."""
        ...

    def transfer(self, target: str, mode: str = "auto") -> None:
        """Hand the callee to `target` (a SIP URI): "refer" (blind transfer, SIP REFER),
        "bridge" (a second call to `target`, bridged with the callee in the media worker) or
        "auto" (REFER, then a bridge when the far end refuses REFER). Answered with one
        `TransferEnded`."""
        ...

    async def hangup(self) -> None:
        """End the call (BYE, or CANCEL while ringing). Idempotent."""
        ...

    @property
    def ended(self) -> Progress | None:
        """The final Progress(ENDED) once the call is over, else None."""
        ...


class InboundCall(CallHandle, Protocol):
    """An inbound call, ringing until answered or rejected."""

    to_user: str  # user part of the request URI, e.g. "13800000001"
    from_uri: str

    async def answer(self, *, accept_transfer: bool = False) -> None:
        """200 OK; media starts flowing. `accept_transfer`: a REFER on this call is taken
        (the simulated callee's phone being transferred); otherwise it is refused."""
        ...

    async def early_media(self) -> None:
        """183 Session Progress with SDP: audio sent from now on plays as early media (a
        carrier's announcement), before or instead of an answer."""
        ...

    async def reject(self, code: int = 486) -> None:
        """Final non-2xx answer (486 Busy Here, 603 Decline, ...)."""
        ...


class Telephony(Protocol):
    """A pool of media workers placing (and optionally accepting) calls."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    @property
    def free_slots(self) -> int:
        """Calls that `dial()` can place right now (0 while full or not running)."""
        ...

    async def dial(self, request: DialRequest) -> CallHandle:
        """Start an outbound call; returns at once, progress arrives as events. Raises
        `TelephonyBusyError` at once, placing nothing, when `free_slots` is 0."""
        ...

    async def incoming(self) -> InboundCall:
        """Wait for the next inbound call (ringing). Only for a pool that listens."""
        ...
