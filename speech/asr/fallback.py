"""FallbackAdapter: a stream engine over a list of stream engines (primary first).

A stream runs on one engine at a time. When it fails (its iteration raises, or a ``Final`` does
not follow a ``SpeechEnded`` within ``final_timeout_s``) the next engine takes over: a new stream
is opened on it and the audio since the last ``Final`` (at most ``replay_s``) is replayed, with
its event times shifted onto this stream's clock. A failed engine is skipped by new streams for
``cooldown_s``. The caller never learns which engine it has, only the events.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import replace

from core.audio import FRAME_MS, SAMPLE_RATE
from speech.asr.base import (
    AsrEvent,
    Final,
    Partial,
    RecognizeStream,
    SpeechEnded,
    SpeechStarted,
    StreamingAsr,
)
from speech.stream import EventStream

log = logging.getLogger(__name__)


def _shift(ev: AsrEvent, offset: float) -> AsrEvent:
    if not offset:
        return ev
    if isinstance(ev, Final):
        return replace(ev, start_t=ev.start_t + offset, end_t=ev.end_t + offset)
    return replace(ev, t=ev.t + offset)


class FallbackAdapter:
    def __init__(
        self,
        engines: Sequence[StreamingAsr],
        *,
        final_timeout_s: float = 2.0,
        replay_s: float = 15.0,
        cooldown_s: float = 30.0,
    ) -> None:
        if not engines:
            raise ValueError("FallbackAdapter needs at least one engine")
        self.engines = list(engines)
        self.name = "fallback(" + ",".join(e.name for e in self.engines) + ")"
        self.final_timeout_s = final_timeout_s
        self.replay_frames = max(1, int(replay_s * 1000 / FRAME_MS))
        self.cooldown_s = cooldown_s
        self.failovers = 0
        self._failed_at: dict[int, float] = {}

    def stream(
        self,
        *,
        prompt: str | None = None,
        language: str | None = None,
        sample_rate: int = SAMPLE_RATE,
    ) -> FallbackStream:
        return FallbackStream(self, prompt, language, sample_rate)

    def first_healthy(self) -> int:
        now = time.monotonic()
        for i in range(len(self.engines)):
            failed = self._failed_at.get(i)
            if failed is None or now - failed >= self.cooldown_s:
                return i
        return 0

    def mark_failed(self, index: int) -> None:
        self._failed_at[index] = time.monotonic()
        self.failovers += 1

    async def aclose(self) -> None:
        for engine in self.engines:
            await engine.aclose()


class FallbackStream(EventStream):
    def __init__(
        self, owner: FallbackAdapter, prompt: str | None, language: str | None, sample_rate: int
    ) -> None:
        super().__init__(sample_rate=sample_rate)
        self._owner = owner
        self.prompt, self._language = prompt, language
        self._replay: deque[bytes] = deque(maxlen=owner.replay_frames)
        self._replay_end = 0  # frame index just after the newest buffered frame
        self._index = -1
        self._inner: RecognizeStream | None = None
        self._offset = 0.0
        self._pump: asyncio.Task[None] | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._open = False  # the caller saw SpeechStarted and no SpeechEnded yet
        self._awaiting_finals = 0
        self._replaying_ended = False  # the backup re-hears an utterance the caller saw end
        self._closing: set[asyncio.Future[None]] = set()  # failed streams being closed
        self._switch(owner.first_healthy(), None)

    def set_prompt(self, prompt: str | None) -> None:
        """Kept for a backup engine's stream, and handed to the one running now."""
        self.prompt = prompt
        if self._inner is not None:
            self._inner.set_prompt(prompt)

    @property
    def engine_index(self) -> int:
        """Which engine of the adapter this stream runs on now."""
        return self._index

    # --- switching engines -------------------------------------------------------------------

    def _switch(self, index: int, error: BaseException | None) -> None:
        engines = self._owner.engines
        while index < len(engines):
            try:
                inner = engines[index].stream(
                    prompt=self.prompt, language=self._language, sample_rate=SAMPLE_RATE
                )
            except Exception as exc:
                log.warning("recognizer engine failed to open a stream", extra={"engine": index})
                self._owner.mark_failed(index)
                error, index = exc, index + 1
                continue
            self._start_inner(index, inner)
            return
        self._fail(error or RuntimeError("no recognizer engine left"))

    def _start_inner(self, index: int, inner: RecognizeStream) -> None:
        self._index, self._inner = index, inner
        self._offset = (self._replay_end - len(self._replay)) * FRAME_MS / 1000
        for frame in self._replay:
            inner.push(frame)
        if self._input_ended:
            inner.end_input()
        self._pump = asyncio.ensure_future(self._relay(inner))
        self._pump.set_name(f"asr-fallback.pump[{index}]")

    def _failover(self, inner: RecognizeStream, error: BaseException) -> None:
        if inner is not self._inner or self._closed:
            return
        log.warning(
            "recognizer engine failed; switching to the next",
            extra={"engine": self._index, "error": type(error).__name__},
        )
        self._cancel_watchdog()
        self._owner.mark_failed(self._index)
        self._replaying_ended = self._awaiting_finals > 0 and not self._open
        old_pump = self._pump
        self._inner = None
        closing = asyncio.ensure_future(inner.aclose())
        self._closing.add(closing)
        closing.add_done_callback(self._closed_inner)
        if old_pump is not None and old_pump is not asyncio.current_task():
            old_pump.cancel()
        self._switch(self._index + 1, error)

    async def _relay(self, inner: RecognizeStream) -> None:
        try:
            async for ev in inner:
                self._on_inner_event(inner, _shift(ev, self._offset))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._failover(inner, exc)
            return
        if inner is self._inner:
            self._cancel_watchdog()
            self._finish()

    def _on_inner_event(self, inner: RecognizeStream, ev: AsrEvent) -> None:
        if self._replaying_ended and not isinstance(ev, Final):
            return  # its SpeechStarted/Partial/SpeechEnded were already delivered
        if isinstance(ev, SpeechStarted):
            if self._open:
                return  # a replayed onset the caller has already seen
            self._open = True
        elif isinstance(ev, SpeechEnded):
            if not self._open:
                return
            self._open = False
            self._awaiting_finals += 1
            self._arm_watchdog(inner)
        elif isinstance(ev, Final):
            self._replaying_ended = False
            self._awaiting_finals = max(0, self._awaiting_finals - 1)
            self._cancel_watchdog()
            if self._awaiting_finals:
                self._arm_watchdog(inner)
            self._forget_until(ev.end_t)
        elif isinstance(ev, Partial) and not self._open:
            return
        self._emit(ev)

    def _closed_inner(self, closing: asyncio.Future[None]) -> None:
        self._closing.discard(closing)
        if not closing.cancelled() and closing.exception() is not None:
            log.debug("failed recognizer stream did not close cleanly")

    def _arm_watchdog(self, inner: RecognizeStream) -> None:
        self._cancel_watchdog()
        self._watchdog = self._loop.call_later(
            self._owner.final_timeout_s,
            lambda: self._failover(inner, TimeoutError("no final transcript in time")),
        )

    def _cancel_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def _forget_until(self, t: float) -> None:
        keep_from = int(round(t * 1000 / FRAME_MS))
        while self._replay and self._replay_end - len(self._replay) < keep_from:
            self._replay.popleft()

    # --- EventStream hooks -------------------------------------------------------------------

    def _on_frame(self, frame: bytes) -> None:
        self._replay.append(frame)
        self._replay_end += 1
        if self._inner is not None:
            self._inner.push(frame)

    def _on_flush(self) -> None:
        if self._inner is not None:
            self._inner.flush()

    def _on_end_input(self) -> None:
        if self._inner is not None:
            self._inner.end_input()

    async def _on_close(self) -> None:
        self._cancel_watchdog()
        inner, self._inner = self._inner, None
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)
        if inner is not None:
            await inner.aclose()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
