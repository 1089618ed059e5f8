"""The wire between the brain and a media worker (its stdin/stdout pipes); only this module
knows its form.

Every frame is a 9-byte header, then the payload::

    <I payload length> <B kind> <I call number>

- ``KIND_AUDIO``: raw PCM16 LE mono 8 kHz for that call, no JSON, no copy beyond the header
  concatenation, so 50 frames/s per call stay cheap.
- ``KIND_CONTROL``: one typed message below, as a small UTF-8 JSON object. Brain -> worker
  messages (`Command`) are tagged ``"op"``, worker -> brain messages (`Event`) ``"ev"``; the
  other keys are the dataclass's fields. Call number 0 = the worker itself.

Send with `encode(msg, call)` or `encode_audio(call, pcm)`. Receive with `Decoder` (brain side,
incremental), `read_message` (worker side, blocking) or `decode` (one whole frame): each gives
`Control(call, msg)` with the typed message, or `Audio(call, pcm)`. Anything else on the pipe
(an unknown tag or kind, a missing or mistyped field) is a `ProtocolError`.

Call numbers are per worker process: the brain numbers its outbound calls from 1, the worker
numbers inbound calls from ``INBOUND_BASE``, so the two never collide.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import struct
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, ClassVar, NamedTuple, get_args, get_origin, get_type_hints

from core.vocab import Disposition
from telephony.base import CallState

HEADER = struct.Struct("<IBI")
KIND_CONTROL = 0
KIND_AUDIO = 1
MAX_PAYLOAD = 16 * 1024 * 1024
INBOUND_BASE = 0x8000_0000


class ProtocolError(Exception):
    """The byte stream is not valid framing or holds no known message (a bug or a corrupted
    pipe)."""


class _Message:
    """Base of every control message: its tag (``op``/``ev``) and kind name on the wire."""

    __slots__ = ()
    TAG: ClassVar[str]
    KIND: ClassVar[str]


class _Command(_Message):
    __slots__ = ()
    TAG = "op"


class _Event(_Message):
    __slots__ = ()
    TAG = "ev"


# --- brain -> worker ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Dial(_Command):
    """Place an outbound call (call number chosen by the brain)."""

    KIND = "dial"
    uri: str
    username: str | None = None
    password: str | None = None
    ring_timeout_s: float = 30.0
    headers: dict[str, str] = field(default_factory=dict)
    from_user: str | None = None  # the caller ID (From user); None: the trunk account's user
    record_dir: str | None = None  # record both directions here (callee.wav, robot.wav)


@dataclass(frozen=True, slots=True)
class Hangup(_Command):
    """BYE, or CANCEL while ringing."""

    KIND = "hangup"


@dataclass(frozen=True, slots=True)
class Answer(_Command):
    """200 OK to a ringing inbound call; ``accept_refer``: take a REFER on it (be transferred,
    as a callee's phone would; otherwise a REFER is refused)."""

    KIND = "answer"
    accept_refer: bool = False


@dataclass(frozen=True, slots=True)
class EarlyMedia(_Command):
    """183 Session Progress with SDP to a ringing inbound call: audio queued for it plays as
    early media (a carrier's announcement) before, or instead of, an answer."""

    KIND = "early_media"


@dataclass(frozen=True, slots=True)
class Reject(_Command):
    """Final non-2xx answer to a ringing inbound call."""

    KIND = "reject"
    code: int = 486


@dataclass(frozen=True, slots=True)
class Mark(_Command):
    """Answer with `MarkDone(name)` once the robot audio queued so far has been played."""

    KIND = "mark"
    name: str


@dataclass(frozen=True, slots=True)
class Clear(_Command):
    """Drop the call's queued robot audio now (barge-in); answered with `Cleared`."""

    KIND = "clear"


@dataclass(frozen=True, slots=True)
class Pause(_Command):
    """Hold the call's queued robot audio (send silence) until `Resume` or `Clear`: barge-in
    before we know whether the callee is only backchannelling; answered with `Paused`."""

    KIND = "pause"


@dataclass(frozen=True, slots=True)
class Resume(_Command):
    """Play the held robot audio on from where `Pause` stopped it."""

    KIND = "resume"


@dataclass(frozen=True, slots=True)
class Cue(_Command):
    """Answer with `Started(name, t)` when the first robot audio queued after this is sent."""

    KIND = "cue"
    name: str


@dataclass(frozen=True, slots=True)
class SendDtmf(_Command):
    """Send RFC 4733 DTMF digits."""

    KIND = "dtmf"
    digits: str


@dataclass(frozen=True, slots=True)
class Transfer(_Command):
    """Hand the call to ``target`` (a SIP URI): ``mode`` "refer", "bridge" or "auto" (REFER,
    then a bridged second call when REFER is refused); answered with `TransferStatus`."""

    KIND = "transfer"
    target: str
    mode: str = "auto"


@dataclass(frozen=True, slots=True)
class Ping(_Command):
    """Heartbeat; the worker's main loop answers with `Pong(seq)`."""

    KIND = "ping"
    seq: int


@dataclass(frozen=True, slots=True)
class Shutdown(_Command):
    """Stop the worker (also queued by the worker itself when its stdin ends)."""

    KIND = "shutdown"


# --- worker -> brain ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ready(_Event):
    """The worker is up; sent once, first."""

    KIND = "ready"
    sip_port: int
    max_calls: int
    pid: int
    fast_frames: bool


@dataclass(frozen=True, slots=True)
class Pong(_Event):
    KIND = "pong"
    seq: int


@dataclass(frozen=True, slots=True)
class CallProgress(_Event):
    """An outbound call rings, or a call is answered."""

    KIND = "progress"
    state: CallState
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Ended(_Event):
    """The call is over; its number is free again. Always the call's last message."""

    KIND = "ended"
    code: int | None
    reason: str
    disposition: Disposition
    hangup_by: str | None  # "local" | "remote" | None


@dataclass(frozen=True, slots=True)
class Registration(_Event):
    """The trunk account's registration changed: the REGISTER's final answer (``active``:
    registered now). Sent only when the trunk registers."""

    KIND = "registration"
    code: int
    reason: str
    active: bool


@dataclass(frozen=True, slots=True)
class Incoming(_Event):
    """A new inbound call, ringing (numbered from ``INBOUND_BASE``)."""

    KIND = "incoming"
    to_user: str
    from_uri: str


@dataclass(frozen=True, slots=True)
class MarkDone(_Event):
    """Every frame queued before `Mark(name)` has been played."""

    KIND = "mark"
    name: str


@dataclass(frozen=True, slots=True)
class Cleared(_Event):
    """`Clear` took effect; ``dropped_ms`` of queued robot audio was never played."""

    KIND = "cleared"
    dropped_ms: int
    last_audio_t: float | None = None  # monotonic time of the last robot frame sent


@dataclass(frozen=True, slots=True)
class Paused(_Event):
    """`Pause` took effect; ``held_ms`` of robot audio waits; ``last_audio_t`` is the
    (host-wide ``time.monotonic``) time the last robot frame was sent."""

    KIND = "paused"
    held_ms: int
    last_audio_t: float | None = None


@dataclass(frozen=True, slots=True)
class Started(_Event):
    """The first robot frame after `Cue(name)` was sent at ``t`` (``time.monotonic``)."""

    KIND = "started"
    name: str
    t: float


@dataclass(frozen=True, slots=True)
class DtmfReceived(_Event):
    KIND = "dtmf"
    digit: str


@dataclass(frozen=True, slots=True)
class TransferStatus(_Event):
    """A `Transfer` is over: ``mode`` used ("refer" or "bridge"), the SIP code that settled it
    (NOTIFY sipfrag or the agent leg's final answer; 0 for none), whether the agent answered."""

    KIND = "transfer"
    mode: str
    code: int
    answered: bool


Command = (
    Dial
    | Hangup
    | Answer
    | EarlyMedia
    | Reject
    | Mark
    | Clear
    | Pause
    | Resume
    | Cue
    | SendDtmf
    | Transfer
    | Ping
    | Shutdown
)
Event = (
    Ready
    | Pong
    | CallProgress
    | Ended
    | Registration
    | Incoming
    | MarkDone
    | Cleared
    | Paused
    | Started
    | DtmfReceived
    | TransferStatus
)
Message = Command | Event


class Control(NamedTuple):
    call: int
    msg: Message


class Audio(NamedTuple):
    call: int
    pcm: bytes


Packet = Control | Audio


# --- encoding ------------------------------------------------------------------------------


def encode(msg: Message, call: int = 0) -> bytes:
    """One control frame: ``msg`` for call number ``call`` (0: the worker itself).

    Fields are checked against their types here, so a bad value fails at the sender's call
    site (`TypeError`/`ValueError`) rather than as a `ProtocolError` in the receiver.
    """
    body: dict[str, Any] = {msg.TAG: msg.KIND}
    for name, convert in _SCHEMAS[type(msg)]:
        try:
            body[name] = convert(getattr(msg, name))
        except (TypeError, ValueError) as err:
            raise type(err)(f"{type(msg).__name__}.{name}: {err}") from None
    payload = json.dumps(body, separators=(",", ":")).encode()
    return HEADER.pack(len(payload), KIND_CONTROL, call) + payload


def encode_audio(call: int, pcm: bytes) -> bytes:
    if len(pcm) > MAX_PAYLOAD:
        raise ValueError(f"audio chunk of {len(pcm)} bytes exceeds {MAX_PAYLOAD}")
    return HEADER.pack(len(pcm), KIND_AUDIO, call) + pcm


# --- field checks (both directions): each message's dataclass fields are its schema -------

_Convert = Callable[[Any], Any]


def _exact(tp: type) -> _Convert:
    def convert(value: Any) -> Any:
        if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
            raise TypeError(f"expected {tp.__name__}, got {type(value).__name__}")
        return value

    return convert


def _number(value: Any) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    return float(value)


def _string_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise TypeError("expected an object of strings")
    return value


def _optional(inner: _Convert) -> _Convert:
    return lambda value: None if value is None else inner(value)


def _converter(tp: Any) -> _Convert:
    """Check (and for enums, convert) one JSON value against a message field's type."""
    if isinstance(tp, types.UnionType):
        (inner,) = (a for a in get_args(tp) if a is not type(None))
        return _optional(_converter(inner))
    if get_origin(tp) is dict:
        return _string_map
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp
    if tp is float:
        return _number
    return _exact(tp)


def _schema(cls: Any) -> tuple[tuple[str, _Convert], ...]:
    """(field name, check) pairs of one message class, in field order."""
    hints = get_type_hints(cls)
    return tuple((f.name, _converter(hints[f.name])) for f in dataclasses.fields(cls))


_KINDS: dict[tuple[str, str], type[_Message]] = {
    (cls.TAG, cls.KIND): cls for cls in get_args(Message)
}
_SCHEMAS = {cls: _schema(cls) for cls in _KINDS.values()}


# --- decoding ------------------------------------------------------------------------------


def _decode_control(payload: bytes) -> Message:
    try:
        body = json.loads(payload)
    except ValueError as err:
        raise ProtocolError(f"control payload is not JSON: {err}") from None
    if not isinstance(body, dict):
        raise ProtocolError("control payload is not a JSON object")
    tag = "op" if "op" in body else "ev"
    kind = body.pop(tag, None)
    cls = _KINDS.get((tag, kind)) if isinstance(kind, str) else None
    if cls is None:
        raise ProtocolError(f"unknown control message {tag}={str(kind)[:20]!r}")
    try:
        fields = {name: convert(body.pop(name)) for name, convert in _SCHEMAS[cls] if name in body}
        if body:
            raise TypeError(f"unexpected fields {sorted(body)}")
        msg: Message = cls(**fields)  # type: ignore[assignment]
    except (TypeError, ValueError) as err:
        raise ProtocolError(f"bad {cls.KIND!r} message: {err}") from None
    return msg


def _decode(kind: int, call: int, payload: bytes) -> Packet:
    if kind == KIND_AUDIO:
        return Audio(call, payload)
    if kind == KIND_CONTROL:
        return Control(call, _decode_control(payload))
    raise ProtocolError(f"unknown frame kind {kind}")


def decode(frame: bytes) -> Packet:
    """Exactly one whole frame, as `encode` or `encode_audio` made it."""
    if len(frame) < HEADER.size:
        raise ProtocolError("truncated header")
    length, kind, call = HEADER.unpack_from(frame)
    if len(frame) != HEADER.size + length:
        raise ProtocolError(f"frame of {len(frame)} bytes, header says {HEADER.size + length}")
    return _decode(kind, call, frame[HEADER.size :])


class Decoder:
    """Incremental decoder for the brain side: feed pipe chunks, get whole messages."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Packet]:
        buf = self._buf
        buf += data
        out: list[Packet] = []
        pos = 0
        size = HEADER.size
        while len(buf) - pos >= size:
            length, kind, call = HEADER.unpack_from(buf, pos)
            if length > MAX_PAYLOAD:
                raise ProtocolError(f"payload length {length} exceeds {MAX_PAYLOAD}")
            end = pos + size + length
            if end > len(buf):
                break
            out.append(_decode(kind, call, bytes(buf[pos + size : end])))
            pos = end
        if pos:
            del buf[:pos]
        return out


def read_message(stream: BinaryIO) -> Packet | None:
    """Blocking read of one message (worker side); None at a clean end of stream."""
    header = stream.read(HEADER.size)
    if not header:
        return None
    if len(header) < HEADER.size:
        raise ProtocolError("truncated header")
    length, kind, call = HEADER.unpack(header)
    if length > MAX_PAYLOAD:
        raise ProtocolError(f"payload length {length} exceeds {MAX_PAYLOAD}")
    payload = stream.read(length) if length else b""
    if len(payload) < length:
        raise ProtocolError("truncated payload")
    return _decode(kind, call, payload)
