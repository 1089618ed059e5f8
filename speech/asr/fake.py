"""Scripted ASR for tests and dry runs: no model, deterministic, instant.

``FakeAsr`` is an utterance engine (wrap it in ``StreamAdapter`` to drive it with audio);
``FakeStreamAsr`` is a stream engine that replays scripted events on the stream clock
(virtual time: an event scheduled at 2.5 s is emitted when the 2.5th second of audio is pushed).
Its streams record the decoding prompt (``set_prompt``) each ``Final`` was released under, in
``prompts``.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import deque
from collections.abc import Iterable, Mapping, Sequence

from core.audio import SAMPLE_RATE, pcm_seconds
from core.text import canonical
from speech.asr.base import AsrEvent, Final, Partial, SpeechEnded, SpeechStarted, Transcript
from speech.stream import EventStream


def pcm_key(pcm: bytes) -> str:
    """Stable key of an audio buffer (for mapping rendered audio back to its text)."""
    return hashlib.sha1(pcm).hexdigest()


class FakeAsr:
    """AsrEngine returning scripted transcripts.

    Lookup order for each call: ``by_audio[sha1(pcm)]`` (see ``remember``), then the next item
    of ``script`` (a queue), then ``default``. Every call is recorded in ``calls`` as
    ``(audio_seconds, prompt)``. Draft decodes (partials) peek at the script without consuming
    it and are only counted in ``drafts``. Like a real engine it returns canonical text
    (``core.text.canonical``).
    """

    name = "fake"
    max_workers = 1

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
        self.languages: list[str | None] = []
        self.drafts = 0
        self.closed = False

    def remember(self, pcm: bytes, text: str) -> None:
        """Make `pcm` transcribe as `text` (e.g. audio a FakeTts rendered from `text`)."""
        self._by_audio[pcm_key(pcm)] = text

    def push_script(self, *texts: str) -> None:
        self._script.extend(texts)

    async def transcribe(
        self,
        pcm: bytes,
        sample_rate: int = SAMPLE_RATE,
        *,
        prompt: str | None = None,
        language: str | None = None,
        draft: bool = False,
    ) -> Transcript:
        if self.closed:
            raise RuntimeError("FakeAsr is closed")
        audio_s = pcm_seconds(pcm, sample_rate)
        if draft:
            self.drafts += 1
        else:
            self.calls.append((audio_s, prompt))
            self.languages.append(language)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        text = self._by_audio.get(pcm_key(pcm))
        if text is None and draft:
            text = self._script[0] if self._script else self.default
        elif text is None:
            text = self._script.popleft() if self._script else self.default
        text = canonical(text)
        confidence = self.confidence if text else 0.0
        return Transcript(text, confidence, language or self.language, audio_s, self.delay_s)

    async def aclose(self) -> None:
        self.closed = True


# --- stream fake ------------------------------------------------------------------------------

Timeline = Sequence[tuple[float, AsrEvent]]


def utterance(
    text: str,
    start: float,
    end: float,
    *,
    partials: Sequence[tuple[float, str]] = (),
    endpoint_s: float = 0.0,
    decode_s: float = 0.0,
    confidence: float = 0.9,
    capped: bool = False,
) -> list[tuple[float, AsrEvent]]:
    """The scripted events of one utterance spoken from ``start`` to ``end`` (stream s).

    ``SpeechEnded`` comes ``endpoint_s`` after the end of speech (the endpoint silence), and the
    ``Final`` ``decode_s`` after that, both on the stream clock.
    """
    events: list[tuple[float, AsrEvent]] = [(start, SpeechStarted(start))]
    events += [(t, Partial(p, t)) for t, p in partials]
    events.append((end + endpoint_s, SpeechEnded(end)))
    final = Final(text, confidence if text else 0.0, start, end, capped, decode_s * 1000)
    events.append((end + endpoint_s + decode_s, final))
    return events


class FakeStreamAsr:
    """StreamingAsr replaying one scripted timeline per opened stream.

    ``fail_at_s``: every stream fails (iteration raises) once that much audio is pushed.
    ``hang``: finals are never delivered (a stuck recognizer), for timeout tests.
    """

    name = "fake-stream"

    def __init__(
        self,
        timelines: Iterable[Timeline] = (),
        *,
        fail_at_s: float | None = None,
        hang: bool = False,
    ) -> None:
        self._timelines: deque[Timeline] = deque(timelines)
        self.fail_at_s = fail_at_s
        self.hang = hang
        self.streams: list[FakeRecognizeStream] = []
        self.closed = False

    def add(self, *timelines: Timeline) -> None:
        self._timelines.extend(timelines)

    def stream(
        self,
        *,
        prompt: str | None = None,
        language: str | None = None,
        sample_rate: int = SAMPLE_RATE,
    ) -> FakeRecognizeStream:
        if self.closed:
            raise RuntimeError("FakeStreamAsr is closed")
        timeline = self._timelines.popleft() if self._timelines else ()
        stream = FakeRecognizeStream(self, timeline, prompt, language, sample_rate)
        self.streams.append(stream)
        return stream

    async def aclose(self) -> None:
        self.closed = True


class FakeRecognizeStream(EventStream):
    def __init__(
        self,
        engine: FakeStreamAsr,
        timeline: Timeline,
        prompt: str | None,
        language: str | None,
        sample_rate: int,
    ) -> None:
        super().__init__(sample_rate=sample_rate)
        self._engine = engine
        self._pending: deque[tuple[float, AsrEvent]] = deque(sorted(timeline, key=lambda e: e[0]))
        self.prompt = prompt
        self.language = language
        self.flushes = 0
        self.prompts: list[tuple[str, str | None]] = []  # (final text, prompt) per utterance

    def _release(self, until: float) -> None:
        while self._pending and self._pending[0][0] <= until + 1e-9:
            _, event = self._pending.popleft()
            if isinstance(event, Final):  # decoded with the prompt set when it is released
                self.prompts.append((event.text, self.prompt))
            if not (self._engine.hang and isinstance(event, Final)):
                self._emit(event)

    def _on_frame(self, frame: bytes) -> None:
        fail_at = self._engine.fail_at_s
        if fail_at is not None and self.pushed_s >= fail_at:
            self._fail(RuntimeError("scripted recognizer failure"))
            return
        self._release(self.pushed_s)

    def _on_flush(self) -> None:
        self.flushes += 1

    def _on_end_input(self) -> None:
        self._release(float("inf"))  # the rest of the script, as if the audio ran on
        if not self._engine.hang:
            self._finish()
