"""``main.py asr transcribe FILE.wav ...``: one JSON line per file.

Each line has ``file``, ``text`` (simplified Chinese), ``rtf`` (decode wall time / audio time),
``duration_s`` and ``confidence``; a file that cannot be read or decoded gives ``file`` and
``error`` instead, and the exit status is then 1. WAVs at 8 or 16 kHz are decoded as they are,
others are resampled to 16 kHz. Files up to 30 s go through the engine's utterance decode when it
has one; longer files (and stream-only engines) go through a recognizer stream, and the finals
are joined.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from core.audio import SAMPLE_RATE, pcm_seconds
from speech import audio
from speech.asr.base import Final
from speech.audio import frame_bytes_for

_UTTERANCE_MAX_S = 30.0


async def _via_stream(engine: Any, pcm: bytes, rate: int, prompt: str | None) -> tuple[str, float]:
    stream = engine.stream(prompt=prompt, sample_rate=rate)
    size = frame_bytes_for(rate)
    usable = len(pcm) - len(pcm) % size
    for i in range(0, usable, size):
        stream.push(pcm[i : i + size])
        if i % (size * 50) == 0:
            await asyncio.sleep(0)  # let decodes start while we push
    stream.end_input()
    texts: list[str] = []
    confidences: list[float] = []
    async for ev in stream:
        if isinstance(ev, Final) and ev.text:
            texts.append(ev.text.rstrip("。，？！.,?! "))
            confidences.append(ev.confidence)
    await stream.aclose()
    return "，".join(texts), (sum(confidences) / len(confidences) if confidences else 0.0)


async def _one(engine: Any, path: Path, prompt: str | None) -> dict[str, Any]:
    wav = await asyncio.to_thread(audio.read_wav, path)
    pcm, rate = wav.pcm, wav.sample_rate
    if rate not in (SAMPLE_RATE, audio.WHISPER_RATE):
        pcm = await asyncio.to_thread(audio.resample_pcm16, pcm, rate, audio.WHISPER_RATE)
        rate = audio.WHISPER_RATE
    duration = pcm_seconds(pcm, rate)
    started = time.perf_counter()
    if hasattr(engine, "transcribe") and duration <= _UTTERANCE_MAX_S:
        tr = await engine.transcribe(pcm, rate, prompt=prompt)
        text, confidence = tr.text, tr.confidence
    elif hasattr(engine, "stream"):
        text, confidence = await _via_stream(engine, pcm, rate, prompt)
    else:
        from speech.asr.adapter import StreamAdapter

        text, confidence = await _via_stream(StreamAdapter(engine), pcm, rate, prompt)
    elapsed = time.perf_counter() - started
    return {
        "file": str(path),
        "text": text,  # engines emit canonical text (core.text)
        "rtf": round(elapsed / duration, 4) if duration else 0.0,
        "duration_s": round(duration, 3),
        "confidence": round(confidence, 3),
    }


async def transcribe_files_async(
    engine: Any, paths: Iterable[str | Path], out: TextIO, *, prompt: str | None = None
) -> int:
    status = 0
    for raw in paths:
        path = Path(raw)
        try:
            row = await _one(engine, path, prompt)
        except (OSError, ValueError, EOFError) as exc:
            row, status = {"file": str(path), "error": f"{type(exc).__name__}: {exc}"}, 1
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
        out.flush()
    return status


def transcribe_files(
    engine: Any, paths: Iterable[str | Path], out: TextIO, *, prompt: str | None = None
) -> int:
    """Transcribe WAV files with `engine` (utterance or stream engine); 0 when all succeeded."""
    return asyncio.run(transcribe_files_async(engine, paths, out, prompt=prompt))
