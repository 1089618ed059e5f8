"""Deterministic TTS for tests and dry runs: a tone per character, silence per pause.

``FakeStreamingTts`` streams clause by clause, each clause taking ``clause_s`` of (virtual or
real) time, for tests of what plays before a line is fully rendered and what barge-in cancels.

Duration = 0.2 s per CJK character / Latin letter / digit + 0.15 s per punctuation mark,
so tests can predict playout lengths. The tone frequency depends on the text hash, so two
different texts give different audio.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import unicodedata
from collections.abc import AsyncGenerator

import numpy as np

from core.audio import SAMPLE_RATE
from speech import audio
from speech.tts.frames import stream_clauses, stream_whole

CHAR_S = 0.2
PAUSE_S = 0.15


def fake_duration_s(text: str) -> float:
    """Exactly how long FakeTts renders `text` (before rounding to samples)."""
    chars = sum(1 for c in text if c.isalnum())
    pauses = sum(1 for c in text if unicodedata.category(c).startswith("P"))
    return chars * CHAR_S + pauses * PAUSE_S


class FakeTts:
    """TtsEngine rendering a deterministic tone/silence pattern at 8 kHz."""

    name = "fake"
    version = "1"

    def __init__(
        self, voice: str = "tone", *, sample_rate: int = SAMPLE_RATE, delay_s: float = 0.0
    ) -> None:
        self.voice = voice
        self.sample_rate = sample_rate
        self.delay_s = delay_s
        self.calls: list[str] = []

    def render(self, text: str) -> bytes:
        """Synchronous rendering (pure function of text and voice)."""
        digest = hashlib.sha1(f"{self.voice}|{text}".encode()).digest()
        freq = 200.0 + digest[0] * 2.0  # 200..710 Hz
        chunks: list[bytes] = []
        tone_n = int(round(CHAR_S * self.sample_rate))
        t = np.arange(tone_n) / self.sample_rate
        envelope = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)  # 10 ms ramps, no clicks
        tone = audio.float_to_pcm16(0.3 * envelope * np.sin(2 * math.pi * freq * t))
        pause = audio.silence(PAUSE_S, self.sample_rate)
        for char in text:
            if char.isalnum():
                chunks.append(tone)
            elif unicodedata.category(char).startswith("P"):
                chunks.append(pause)
        return b"".join(chunks)

    async def synthesize(self, text: str) -> bytes:
        self.calls.append(text)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return self.render(text)

    async def synthesize_stream(self, text: str) -> AsyncGenerator[bytes, None]:
        """The same audio as `synthesize`, in 20 ms frames (the last one padded)."""
        async for frame in stream_whole(self.synthesize, text, sample_rate=self.sample_rate):
            yield frame


class FakeStreamingTts(FakeTts):
    """A FakeTts whose stream renders clause by clause (``clause_s`` each, one clause of
    look-ahead, as the real engines do); it records clauses rendered and cancelled."""

    def __init__(self, voice: str = "tone", *, clause_s: float = 0.05) -> None:
        super().__init__(voice)
        self.clause_s = clause_s
        self.rendered: list[str] = []  # clauses whose render finished
        self.cancelled: list[str] = []  # clauses whose render was cancelled

    async def _clause(self, text: str) -> bytes:
        try:
            await asyncio.sleep(self.clause_s)
        except asyncio.CancelledError:
            self.cancelled.append(text)
            raise
        self.rendered.append(text)
        return self.render(text)

    async def synthesize_stream(self, text: str) -> AsyncGenerator[bytes, None]:
        self.calls.append(text)
        async with contextlib.aclosing(
            stream_clauses(self._clause, text, sample_rate=self.sample_rate)
        ) as frames:
            async for frame in frames:
                yield frame
