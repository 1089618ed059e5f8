"""Framing between the brain and a media worker over the worker's stdin/stdout pipes.

Every message is a 9-byte header, then the payload::

    <I payload length> <B kind> <I call number>

- ``KIND_CONTROL``: the payload is a small UTF-8 JSON object. Brain -> worker objects carry
  ``"op"`` (dial, hangup, answer, reject, mark, clear, dtmf); worker -> brain objects carry
  ``"ev"`` (ready, progress, ended, incoming, mark, cleared, dtmf). Call number 0 = the worker.
- ``KIND_AUDIO``: the payload is raw PCM16 LE mono 8 kHz for that call, no JSON, no copy
  beyond the header concatenation, so 50 frames/s per call stay cheap.

Call numbers are per worker process: the brain numbers its outbound calls from 1, the worker
numbers inbound calls from ``INBOUND_BASE``, so the two never collide.

Also here: `Channel`, the single-consumer async queue that delivers decoded messages to a
call's `events()` / `audio()` iterators, and the SIP code -> `EndReason` table shared by the
worker and the fake.
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections import deque
from typing import Any, BinaryIO, Generic, NamedTuple, TypeVar

from telephony.base import EndReason

HEADER = struct.Struct("<IBI")
KIND_CONTROL = 0
KIND_AUDIO = 1
MAX_PAYLOAD = 16 * 1024 * 1024
INBOUND_BASE = 0x8000_0000

T = TypeVar("T")


class ProtocolError(Exception):
    """The byte stream is not valid framing (a bug or a corrupted pipe)."""


class Control(NamedTuple):
    call: int
    body: dict[str, Any]


class Audio(NamedTuple):
    call: int
    pcm: bytes


Message = Control | Audio


def encode_control(body: dict[str, Any], call: int = 0) -> bytes:
    payload = json.dumps(body, separators=(",", ":")).encode()
    return HEADER.pack(len(payload), KIND_CONTROL, call) + payload


def encode_audio(call: int, pcm: bytes) -> bytes:
    if len(pcm) > MAX_PAYLOAD:
        raise ValueError(f"audio chunk of {len(pcm)} bytes exceeds {MAX_PAYLOAD}")
    return HEADER.pack(len(pcm), KIND_AUDIO, call) + pcm


def _decode(kind: int, call: int, payload: bytes) -> Message:
    if kind == KIND_AUDIO:
        return Audio(call, payload)
    if kind == KIND_CONTROL:
        body = json.loads(payload)
        if not isinstance(body, dict):
            raise ProtocolError("control payload is not a JSON object")
        return Control(call, body)
    raise ProtocolError(f"unknown message kind {kind}")


class Decoder:
    """Incremental decoder for the brain side: feed pipe chunks, get whole messages."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Message]:
        buf = self._buf
        buf += data
        out: list[Message] = []
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


def read_message(stream: BinaryIO) -> Message | None:
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


def end_reason_for_code(code: int) -> EndReason:
    """EndReason of an unanswered call that got a final non-2xx SIP answer."""
    if code in (486, 600):
        return EndReason.BUSY
    if code in (408, 480):
        return EndReason.NO_ANSWER
    return EndReason.REJECTED


class Channel(Generic[T]):
    """Async queue, iterable with ``async for``; iteration ends after `close()` and a drain.

    Meant for one consumer (a call's events or audio); concurrent consumers each get
    different items. With ``maxlen`` the oldest items are dropped when the consumer falls
    behind (`dropped` counts them), so an unread audio stream cannot grow without bound.
    """

    def __init__(self, maxlen: int | None = None) -> None:
        self._items: deque[T] = deque()
        self._maxlen = maxlen
        self._waiters: list[asyncio.Future[None]] = []
        self._closed = False
        self.dropped = 0

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, item: T) -> None:
        if self._closed:
            return
        if self._maxlen is not None and len(self._items) >= self._maxlen:
            self._items.popleft()
            self.dropped += 1
        self._items.append(item)
        self._wake()

    def close(self) -> None:
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        if not self._waiters:
            return
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def __aiter__(self) -> Channel[T]:
        return self

    async def __anext__(self) -> T:
        while not self._items:
            if self._closed:
                raise StopAsyncIteration
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        return self._items.popleft()

    async def get(self) -> T:
        """The next item; raises `EOFError` once closed and drained."""
        try:
            return await self.__anext__()
        except StopAsyncIteration:
            raise EOFError("channel closed") from None
