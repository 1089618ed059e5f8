"""The media worker's pure parts (no pjsua2): playout buffers, the output writer thread, and
the rules that map SIP outcomes to a `Disposition` (shared with the fake). Unit-tested without
a SIP stack."""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from core.audio import FRAME_BYTES
from core.vocab import Disposition
from telephony import ipc

log = logging.getLogger("telephony.worker")

SILENCE = bytes(FRAME_BYTES)
_NO_MARKS: tuple[str, ...] = ()


AUTH_CODES = (401, 407)  # a final challenge: the trunk did not take our credentials (or had none)


def disposition_for_code(code: int, challenged: bool = False) -> Disposition:
    """Disposition of an unanswered call that got a final non-2xx SIP answer.

    A final 401/407, or a 403 answering an INVITE that carried our credentials (`challenged`),
    is the trunk refusing us, not the callee: `TRUNK_REJECTED`. A 403 to an unchallenged
    INVITE stays the callee's (`REJECTED`): a carrier may forbid one destination."""
    if code in AUTH_CODES or (code == 403 and challenged):
        return Disposition.TRUNK_REJECTED
    if code in (486, 600):
        return Disposition.BUSY
    if code in (408, 480):
        return Disposition.NO_ANSWER
    return Disposition.REJECTED


def classify_end(
    *,
    outbound: bool,
    answered: bool,
    local_hangup: bool,
    ring_timeout: bool,
    got_response: bool,
    remote_final: int | None,
    code: int,
    challenged: bool = False,
) -> tuple[Disposition, str | None]:
    """(Disposition, hangup_by) for a call that has just disconnected."""
    if answered:
        return Disposition.COMPLETED, "local" if local_hangup else "remote"
    if ring_timeout:  # NO_ANSWER if the far end responded at all, else unreachable
        return (Disposition.NO_ANSWER if got_response else Disposition.FAILED), "local"
    if local_hangup:  # outbound: the brain cancelled; inbound: the brain rejected
        return (Disposition.NO_ANSWER if outbound else disposition_for_code(code)), "local"
    if not outbound:  # the caller gave up before we answered
        return Disposition.NO_ANSWER, "remote"
    if remote_final is not None:
        return disposition_for_code(remote_final, challenged), "remote"
    return Disposition.FAILED, None  # timer B, transport error, unresolvable


def request_user(whole_msg: str) -> str:
    """User part of the request URI in the first line of a SIP request."""
    parts = whole_msg.split("\r\n", 1)[0].split(" ")
    if len(parts) < 2:
        return ""
    scheme, _, rest = parts[1].split(";", 1)[0].partition(":")
    if "@" in rest:
        return rest.split("@", 1)[0]
    return rest if scheme == "tel" else ""


def bare_uri(name_addr: str) -> str:
    """'"Bob" <sip:bob@host>;tag=1' -> 'sip:bob@host'."""
    if "<" in name_addr and ">" in name_addr:
        return name_addr[name_addr.index("<") + 1 : name_addr.index(">")]
    return name_addr.split(";", 1)[0].strip()


class Playout:
    """Robot audio waiting to be played on one call; shared by reader and clock threads."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.live = False  # set once the call is answered: early media gets no robot audio
        self._lock = threading.Lock()
        self._clock = clock
        self._buf = bytearray()
        self._queued = 0  # bytes ever queued
        self._played = 0  # bytes ever played (or dropped by clear)
        self._marks: deque[tuple[int, str]] = deque()
        self._cues: deque[tuple[int, str]] = deque()  # (position, name): a robot line begins
        self._paused = False  # barge-in: hold the queue, send silence
        self.last_audio_t: float | None = None  # clock time of the last robot frame sent
        self.started: list[tuple[str, float]] = []  # cues reached; the clock thread drains it

    def push(self, pcm: bytes) -> None:
        with self._lock:
            self._buf += pcm
            self._queued += len(pcm)

    def mark(self, name: str) -> bool:
        """Queue a mark; True when everything queued has already been played."""
        with self._lock:
            if self._played >= self._queued:
                return True
            self._marks.append((self._queued, name))
            return False

    def cue(self, name: str) -> None:
        """Report ``(name, clock time)`` in `started` when the next audio queued after this
        point is sent (the first frame of a new robot line on the wire)."""
        with self._lock:
            self._cues.append((self._queued, name))

    def pause(self) -> int:
        """Hold the queue (send silence) until `resume`; returns the bytes held."""
        with self._lock:
            self._paused = True
            return len(self._buf)

    def resume(self) -> None:
        with self._lock:
            self._paused = False

    def pull(self) -> tuple[bytes | None, tuple[str, ...]]:
        """Next 20 ms frame (None when idle or paused) and the marks it completes; cues it
        reaches go to `started`."""
        with self._lock:
            buf = self._buf
            if not buf or not self.live or self._paused:
                return None, _NO_MARKS
            if self._cues and self._cues[0][0] <= self._played:
                self._reach_cues()
            n = min(len(buf), FRAME_BYTES)
            data = bytes(buf[:n])
            del buf[:n]
            self._played += n
            self.last_audio_t = self._clock()
            marks = self._marks
            if not marks or marks[0][0] > self._played:
                reached = _NO_MARKS
            else:
                names = []
                while marks and marks[0][0] <= self._played:
                    names.append(marks.popleft()[1])
                reached = tuple(names)
        if n < FRAME_BYTES:
            data += SILENCE[n:]
        return data, reached

    def clear(self) -> int:
        """Drop queued audio, pending marks and cues (a pause ends too); returns the bytes
        dropped."""
        with self._lock:
            dropped = len(self._buf)
            self._buf.clear()
            self._played = self._queued
            self._marks.clear()
            self._cues.clear()
            self._paused = False
        return dropped

    def _reach_cues(self) -> None:
        now = self._clock()
        while self._cues and self._cues[0][0] <= self._played:
            self.started.append((self._cues.popleft()[1], now))


class Outbox:
    """Writes frames to the brain from a dedicated thread, batching whatever is queued."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._q: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="ipc-writer", daemon=True)
        self._thread.start()

    def put(self, data: bytes) -> None:
        self._q.put(data)

    def send(self, call: int, msg: ipc.Event) -> None:
        """Queue one event for the brain (``call`` 0: about the worker itself)."""
        self._q.put(ipc.encode(msg, call))

    def marks_done(self, call: int, names: Iterable[str]) -> None:
        """The one place "mark done" leaves the worker: played at once on request, or reached
        by the playout on the clock thread."""
        for name in names:
            self._q.put(ipc.encode(ipc.MarkDone(name), call))

    def close(self, timeout: float = 2.0) -> None:
        self._q.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        broken = False
        while True:
            item = self._q.get()
            chunks: list[bytes] = []
            while item is not None:
                chunks.append(item)
                try:
                    item = self._q.get_nowait()
                except queue.Empty:
                    break
            if chunks and not broken:
                broken = not self._write(b"".join(chunks))
            if item is None:
                return

    def _write(self, data: bytes) -> bool:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError:
            log.warning("brain pipe closed; dropping output")
            return False
        return True
