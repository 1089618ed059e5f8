"""Turn timing: when the callee really stopped, when the endpoint fired, how fast we replied.

Recognizer events carry *stream* time (seconds of audio pushed). ``TurnClock`` remembers the
wall (monotonic) time at which each 20 ms frame was pushed, so stream time `t` maps back to
the moment that audio arrived, and pairs each ``Final`` with its ``SpeechEnded`` by order
(every utterance has one of each, in the same order) within half a frame of tolerance, never
by float equality. Reply latency runs from the true end of the callee's speech to the moment
the first audio of the robot's reply is queued: endpoint silence, decode and NLU included.
The latency the callee hears runs on to the reply's first frame sent on RTP (the media
worker's ``PlayoutStarted`` stamp, on the same host-wide monotonic clock).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from core.audio import FRAME_S

_HISTORY = 3000  # frames of push times kept (60 s): enough for any utterance
_TOLERANCE_S = FRAME_S / 2


class _HasLatency(Protocol):
    latency_ms: float | None


@dataclass(frozen=True, slots=True)
class TurnTimes:
    """Wall (monotonic) times of one callee utterance."""

    speech_end: float  # the frame holding the end of speech was pushed
    endpoint: float  # the recognizer decided the turn was over
    final: float  # its transcript arrived


class TurnClock:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._now = clock
        self._pushed: deque[float] = deque(maxlen=_HISTORY)
        self._frames = 0
        self._endpoints: deque[tuple[float, float]] = deque()  # (stream t, wall) in order
        self._awaiting: tuple[_HasLatency, float] | None = None

    def frame_pushed(self) -> None:
        """One 20 ms frame went into the recognizer now."""
        self._pushed.append(self._now())
        self._frames += 1

    def wall_at(self, t: float) -> float:
        """Wall time at which stream time `t` had been pushed (now, when out of history)."""
        index = max(0, round(t / FRAME_S) - 1) - (self._frames - len(self._pushed))
        if 0 <= index < len(self._pushed):
            return self._pushed[index]
        return self._now()

    def speech_ended(self, t: float) -> None:
        """The recognizer's endpoint for speech that ended at stream time `t` fired now."""
        self._endpoints.append((t, self._now()))

    def final(self, end_t: float) -> TurnTimes:
        """The transcript of speech ending at stream time `end_t` arrived now."""
        now = self._now()
        while self._endpoints and self._endpoints[0][0] < end_t - _TOLERANCE_S:
            self._endpoints.popleft()  # an endpoint whose final never came
        endpoint = now
        if self._endpoints and abs(self._endpoints[0][0] - end_t) <= _TOLERANCE_S:
            endpoint = self._endpoints.popleft()[1]
        return TurnTimes(self.wall_at(end_t), endpoint, now)

    def await_reply(self, turn: _HasLatency, speech_end: float) -> None:
        """`turn` gets its latency when the first audio of the next reply is queued."""
        self._awaiting = (turn, speech_end)

    def no_reply(self) -> None:
        """Nothing was said in reply to the last turn: it has no latency."""
        self._awaiting = None

    def reply_queued(self) -> tuple[_HasLatency, float] | None:
        """The first audio of a robot line was queued now; returns the callee turn it
        answers and that turn's end of speech (for the latency where the callee hears it)."""
        awaiting = self._awaiting
        if awaiting is not None:
            turn, since = awaiting
            turn.latency_ms = round((self._now() - since) * 1000, 1)
            self._awaiting = None
        return awaiting


class Countdown:
    """Calls `fire` once `seconds` after the last ``arm`` unless cancelled first (the callee's
    no-input timeout: armed when a line played to its end, cancelled when they speak)."""

    def __init__(self, seconds: float, fire: Callable[[], None]) -> None:
        self._seconds = seconds
        self._fire = fire
        self._handle: asyncio.TimerHandle | None = None

    def arm(self) -> None:
        self.cancel()
        self._handle = asyncio.get_running_loop().call_later(self._seconds, self._fire)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
