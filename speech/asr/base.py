"""ASR interfaces: utterance decode (``AsrEngine``) and recognizer streams (``StreamingAsr``).

``AsrEngine.transcribe`` decodes one finished utterance. ``StreamingAsr.stream()`` opens one
recognizer stream per call: the caller pushes 20 ms PCM16 frames (sync, never blocking) and
reads a small closed set of events with ``async for``::

    SpeechStarted(t)                      the callee started talking (barge-in trigger)
    Partial(text, t)                      interim text while the callee is still talking
    SpeechEnded(t)                        the endpoint: the callee stopped at stream time t
    Final(text, confidence, start_t, end_t, capped, decode_ms)   the utterance's transcript

Times are stream seconds: audio pushed into the stream so far, so tests need no clock. Every
``SpeechStarted`` is followed by one ``SpeechEnded`` and then one ``Final`` for that utterance
(its text may be empty: noise, a cough). A ``SpeechStarted`` of the next utterance may arrive
before the previous ``Final`` (barge-in never waits for a decode); ``start_t``/``end_t`` tell
which utterance a ``Final`` belongs to.

Text is final: ``Transcript.text``, ``Partial.text`` and ``Final.text`` are in the canonical form
of ``core.text.canonical`` (simplified characters, NFKC width, Chinese punctuation), applied once
by the engine; consumers (the call flow, the NLU) do not normalise it again.

N-best: an engine that knows its other hypotheses (Whisper's beam) puts them in
``alternatives``: ``(canonical text, sequence log-probability)`` pairs, best first, distinct
texts, the 1-best among them. Empty when the engine has none (every other engine and fake), so
consumers treat ``()`` as "only ``text``". The NLU combines them (``context["alternatives"]``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from core.audio import SAMPLE_RATE


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str  # canonical (core.text)
    confidence: float  # 0..1
    language: str  # e.g. "zh"
    audio_s: float  # seconds of audio decoded
    decode_s: float  # wall seconds spent decoding
    alternatives: tuple[tuple[str, float], ...] = ()  # n-best (text, log-prob), best first


class AsrEngine(Protocol):
    """Utterance-level decode. ``draft=True`` asks for a cheaper decode (partials)."""

    name: str

    async def transcribe(
        self,
        pcm: bytes,
        sample_rate: int = SAMPLE_RATE,
        *,
        prompt: str | None = None,
        language: str | None = None,
        draft: bool = False,
    ) -> Transcript:
        """Decode one utterance of PCM16 mono audio. Runs off the event loop."""
        ...

    async def aclose(self) -> None: ...


# --- stream events --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    t: float  # stream seconds at the onset


@dataclass(frozen=True, slots=True)
class Partial:
    text: str
    t: float  # stream seconds of the audio this text covers (up to)


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    t: float  # stream seconds at the end of speech (the cut, when capped)


@dataclass(frozen=True, slots=True)
class Final:
    text: str  # canonical (core.text); "" when nothing intelligible was said
    confidence: float  # 0..1
    start_t: float  # stream seconds where the utterance starts
    end_t: float  # stream seconds where the speech ends (the cut, when capped)
    capped: bool = False  # cut at the max-utterance length while the callee was talking
    decode_ms: float = 0.0  # wall time spent decoding this final
    language: str = "zh"
    alternatives: tuple[tuple[str, float], ...] = ()  # n-best (text, log-prob), best first


AsrEvent = SpeechStarted | Partial | SpeechEnded | Final


class AsrStreamError(RuntimeError):
    """The recognizer behind a stream failed (raised from the stream's iteration)."""


class RecognizeStream(Protocol):
    """One call's recognizer. ``push``/``flush``/``end_input`` are sync and never block."""

    sample_rate: int  # of the frames pushed
    frame_bytes: int  # one 20 ms frame at that rate

    def push(self, frame: bytes) -> None:
        """Queue one 20 ms PCM16 mono frame (resampled inside; ValueError on a bad size)."""
        ...

    def flush(self) -> None:
        """End the utterance in progress now (its ``SpeechEnded`` + ``Final`` follow)."""
        ...

    def end_input(self) -> None:
        """No more audio: pending finals are delivered, then iteration stops."""
        ...

    def set_prompt(self, prompt: str | None) -> None:
        """Decoding hints (``StreamingAsr.stream(prompt=...)``) for decodes submitted from now
        on: the call flow hands each script state's expected replies over as the state changes.
        ``None``: no prompt. Engines that take no prompt ignore it."""
        ...

    async def aclose(self) -> None:
        """Stop now: pending work is dropped and iteration stops."""
        ...

    @property
    def pushed_s(self) -> float:
        """Stream seconds pushed so far (the stream clock)."""
        ...

    def __aiter__(self) -> AsyncIterator[AsrEvent]: ...


class StreamingAsr(Protocol):
    """A recognizer engine: shared by every call, one ``stream()`` per call."""

    name: str

    def stream(
        self,
        *,
        prompt: str | None = None,
        language: str | None = None,
        sample_rate: int = SAMPLE_RATE,
    ) -> RecognizeStream:
        """Open a stream. ``prompt`` biases vocabulary (changed later with
        ``RecognizeStream.set_prompt``); ``language`` routes/decodes."""
        ...

    async def aclose(self) -> None: ...
