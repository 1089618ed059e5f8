"""TTS interface: text in, 8 kHz PCM16 mono out, whole or as a stream of frames.

``synthesize`` renders a whole line (the prompt cache stores these); ``synthesize_stream``
yields fixed-size frames (20 ms by default, the last one padded with silence) as soon as the
first part of the line is rendered, so a live line starts playing before it is fully rendered.
Closing the stream early (barge-in) cancels the rendering still in progress.

``PromptSource`` is what a call plays robot lines through: the prompt cache in front of an
engine, so a cached line goes out at once and a new one streams while it is being cached; a
personal line (PII) is spoken with ``cache=False`` and leaves no trace in the cache.

Every engine reads numbers through ``speech.tts.normalize.normalize_for_tts`` first.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Protocol


class TtsEngine(Protocol):
    name: str  # engine name, e.g. "espeak"
    voice: str  # e.g. "cmn-latn-pinyin"
    version: str  # part of the cache key: changes when output would change
    sample_rate: int  # of the PCM it returns (8000 unless configured otherwise)

    async def synthesize(self, text: str) -> bytes:
        """Render `text` as PCM16 mono at `sample_rate`. Runs off the event loop."""
        ...

    def synthesize_stream(self, text: str) -> AsyncGenerator[bytes, None]:
        """Render `text` as PCM16 frames of equal size, the first one as early as possible."""
        ...


class PromptSource(Protocol):
    """Robot lines as the call flow plays them (``speech.cache.PromptCache`` implements it)."""

    def speak(self, text: str, *, cache: bool = True) -> AsyncGenerator[bytes, None]:
        """PCM16 mono chunks of `text` at 8 kHz, in playing order: a line already rendered comes
        in one chunk at once; a new line comes as frames from its first clause on, while it is
        rendered for next time. Closing the generator early (barge-in) stops this caller's share
        of the work: the rest of the line is not rendered unless another caller still wants it.

        ``cache=False`` (a personal line: a lead's name, company, what the callee said) streams
        it from the engine alone: never looked up, kept in memory, shared or written to disk.
        """
        ...
