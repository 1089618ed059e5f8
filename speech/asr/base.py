"""ASR interface: one shared engine per process, utterance-level decode."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str  # simplified Chinese, normalized
    confidence: float  # 0..1
    language: str  # e.g. "zh"
    audio_s: float  # seconds of audio decoded
    decode_s: float  # wall seconds spent decoding


class AsrEngine(Protocol):
    name: str

    async def transcribe(
        self, pcm: bytes, sample_rate: int = 8000, *, prompt: str | None = None
    ) -> Transcript:
        """Decode one utterance of PCM16 mono audio. Runs off the event loop."""
        ...

    async def aclose(self) -> None: ...
