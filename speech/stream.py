"""Shared mechanics of recognizer streams: frame checks, resampling, the event queue.

``EventStream`` is the base of every ``RecognizeStream`` here. Subclasses implement
``_on_frame`` (one ``core.audio`` frame, 20 ms at 8 kHz, called from ``push`` on the event
loop: keep it cheap), ``_on_flush``, ``_on_end_input`` (eventually call ``_finish()``) and
``_on_close``. Events go out through ``_emit`` (event loop) or ``_emit_threadsafe`` (worker
threads).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator
from typing import Final as ConstFinal

import numpy as np

from core.audio import FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE, SAMPLE_WIDTH
from speech import audio
from speech.asr.base import AsrEvent, AsrStreamError
from speech.audio import frame_bytes_for

log = logging.getLogger(__name__)


class StreamResampler:
    """Stateful band-limited resampler for a stream of chunks (same filter as
    ``audio.resample_float``, no edge effects at chunk boundaries; ~2 ms of delay)."""

    def __init__(self, src_rate: int, dst_rate: int) -> None:
        g = math.gcd(src_rate, dst_rate)
        self.up, self.down = dst_rate // g, src_rate // g
        self._table, self._half = audio._polyphase_table(self.up, self.down)
        self._buf = np.zeros(self._half, np.float32)  # left padding, as in the batch version
        self._buf_start = 0  # padded-coordinate index of _buf[0]
        self._next_out = 0
        self._offsets = np.arange(2 * self._half)

    def process(self, samples: audio.FloatArray) -> audio.FloatArray:
        self._buf = np.concatenate([self._buf, samples.astype(np.float32)])
        available = self._buf_start + self._buf.size  # padded samples seen so far
        last_base = available - 1 - 2 * self._half  # output needs padded[base+1 .. base+2h]
        if last_base < 0:
            return np.zeros(0, np.float32)
        n_end = (last_base * self.up) // self.down + 1
        n = np.arange(self._next_out, n_end, dtype=np.int64)
        if n.size == 0:
            return np.zeros(0, np.float32)
        base, phase = np.divmod(n * self.down, self.up)
        idx = (base + 1 - self._buf_start)[:, None] + self._offsets[None, :]
        out = np.einsum("ij,ij->i", self._buf[idx], self._table[phase]).astype(np.float32)
        self._next_out = int(n_end)
        keep_from = (self._next_out * self.down) // self.up + 1  # first index still needed
        drop = max(0, keep_from - self._buf_start)
        self._buf = self._buf[drop:]
        self._buf_start += drop
        return out


class _End:
    pass


_END: ConstFinal = _End()


class EventStream:
    """Base recognizer stream: validates and resamples frames, queues events."""

    prompt: str | None = None  # decoding hints, read by streams whose engine takes a prompt

    def __init__(self, *, sample_rate: int = SAMPLE_RATE) -> None:
        self.sample_rate = sample_rate
        self.frame_bytes = frame_bytes_for(sample_rate)
        self._resampler = (
            None if sample_rate == SAMPLE_RATE else StreamResampler(sample_rate, SAMPLE_RATE)
        )
        self._carry = np.zeros(0, np.float32)
        self._loop = asyncio.get_running_loop()  # streams are opened on the event loop
        self._queue: asyncio.Queue[AsrEvent | _End | BaseException] = asyncio.Queue()
        self._frames = 0  # core.audio frames handed to _on_frame
        self._input_ended = False
        self._closed = False
        self._finished = False

    # --- caller side ---------------------------------------------------------------------------

    @property
    def pushed_s(self) -> float:
        return self._frames * FRAME_MS / 1000

    def push(self, frame: bytes) -> None:
        if self._input_ended or self._closed:
            raise RuntimeError("push() after end_input() or aclose()")
        if len(frame) != self.frame_bytes:
            implied = len(frame) // SAMPLE_WIDTH * (1000 // FRAME_MS)
            hint = (
                f" (20 ms of {implied} Hz audio?)"
                if len(frame) % SAMPLE_WIDTH == 0 and implied
                else ""
            )
            raise ValueError(
                f"frame must be {self.frame_bytes} bytes (20 ms of PCM16 mono at "
                f"{self.sample_rate} Hz), got {len(frame)}{hint}"
            )
        if self._resampler is None:
            self._feed(frame)
            return
        out = self._resampler.process(audio.pcm16_to_float(frame))
        self._carry = np.concatenate([self._carry, out])
        n = FRAME_SAMPLES
        while self._carry.size >= n:
            self._feed(audio.float_to_pcm16(self._carry[:n]))
            self._carry = self._carry[n:]

    def _feed(self, frame: bytes) -> None:
        self._frames += 1
        self._on_frame(frame)

    def set_prompt(self, prompt: str | None) -> None:
        """New decoding hints for the decodes submitted from now on (cheap: a reference)."""
        self.prompt = prompt

    def flush(self) -> None:
        if not (self._input_ended or self._closed):
            self._on_flush()

    def end_input(self) -> None:
        if self._input_ended or self._closed:
            return
        self._input_ended = True
        self._on_end_input()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self._on_close()
        finally:
            self._finish()

    def __aiter__(self) -> AsyncIterator[AsrEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[AsrEvent]:
        while True:
            item = await self._queue.get()
            if isinstance(item, _End):
                return
            if isinstance(item, BaseException):
                raise AsrStreamError(f"recognizer failed: {type(item).__name__}") from item
            yield item

    # --- engine side ---------------------------------------------------------------------------

    def _emit(self, event: AsrEvent) -> None:
        if not (self._closed or self._finished):
            self._queue.put_nowait(event)

    def _emit_threadsafe(self, event: AsrEvent) -> None:
        self._loop.call_soon_threadsafe(self._emit, event)

    def _fail(self, exc: BaseException) -> None:
        """The engine failed: iteration raises AsrStreamError, then stops."""
        if not (self._closed or self._finished):
            log.warning("recognizer stream failed", extra={"error": type(exc).__name__})
            self._queue.put_nowait(exc)
            self._finish()

    def _finish(self) -> None:
        if not self._finished:
            self._finished = True
            self._queue.put_nowait(_END)

    # --- hooks ---------------------------------------------------------------------------------

    def _on_frame(self, frame: bytes) -> None:
        raise NotImplementedError

    def _on_flush(self) -> None:
        pass

    def _on_end_input(self) -> None:
        self._finish()

    async def _on_close(self) -> None:
        pass
