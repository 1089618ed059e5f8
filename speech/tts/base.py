"""TTS interface: text in, 8 kHz PCM16 mono out."""

from __future__ import annotations

from typing import Protocol


class TtsEngine(Protocol):
    name: str  # engine name, e.g. "espeak"
    voice: str  # e.g. "cmn-latn-pinyin"
    version: str  # part of the cache key: changes when output would change

    async def synthesize(self, text: str) -> bytes:
        """Render `text` as PCM16 mono at 8 kHz. Runs off the event loop."""
        ...
