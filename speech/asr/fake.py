"""Scripted ASR for tests and dry runs: no model, deterministic, instant."""

from __future__ import annotations

import asyncio
import hashlib
from collections import deque
from collections.abc import Iterable, Mapping

from speech.asr.base import Transcript


def pcm_key(pcm: bytes) -> str:
    """Stable key of an audio buffer (for mapping rendered audio back to its text)."""
    return hashlib.sha1(pcm).hexdigest()


class FakeAsr:
    """AsrEngine returning scripted transcripts.

    Lookup order for each call: ``by_audio[sha1(pcm)]`` (see ``remember``), then the next item
    of ``script`` (a queue), then ``default``. Every call is recorded in ``calls`` as
    ``(audio_seconds, prompt)``.
    """

    name = "fake"

    def __init__(
        self,
        script: Iterable[str] = (),
        *,
        by_audio: Mapping[bytes, str] | None = None,
        default: str = "",
        confidence: float = 0.9,
        language: str = "zh",
        delay_s: float = 0.0,
    ) -> None:
        self._script: deque[str] = deque(script)
        self._by_audio = {pcm_key(pcm): text for pcm, text in (by_audio or {}).items()}
        self.default = default
        self.confidence = confidence
        self.language = language
        self.delay_s = delay_s
        self.calls: list[tuple[float, str | None]] = []
        self.closed = False

    def remember(self, pcm: bytes, text: str) -> None:
        """Make `pcm` transcribe as `text` (e.g. audio a FakeTts rendered from `text`)."""
        self._by_audio[pcm_key(pcm)] = text

    def push_script(self, *texts: str) -> None:
        self._script.extend(texts)

    async def transcribe(
        self, pcm: bytes, sample_rate: int = 8000, *, prompt: str | None = None
    ) -> Transcript:
        if self.closed:
            raise RuntimeError("FakeAsr is closed")
        audio_s = len(pcm) / 2 / sample_rate
        self.calls.append((audio_s, prompt))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        text = self._by_audio.get(pcm_key(pcm))
        if text is None:
            text = self._script.popleft() if self._script else self.default
        confidence = self.confidence if text else 0.0
        return Transcript(text, confidence, self.language, audio_s, self.delay_s)

    async def aclose(self) -> None:
        self.closed = True
