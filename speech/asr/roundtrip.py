"""Phone-channel round trip: text -> espeak-ng -> 8 kHz G.711 leg (+ line noise) -> Whisper.

``python -m speech.asr.roundtrip --model-dir DIR`` reads JSON lines on stdin, one clip each::

    {"id": "...", "text": "...", "variant": "f3", "speed": 135, "pitch": 50, "gap": 1,
     "codec": "ulaw" | "alaw", "noise_dbfs": -45.0 | null, "seed": 7}

and writes one JSON line per clip on stdout: ``id``, ``ear_text`` (canonical), ``confidence``,
``audio_s``, ``decode_s`` (or ``id`` and ``error``). It is a process of its own so that training
code (``nlu.training.ear``) can hear text through the project's real recognizer without importing
``speech`` (the layers keep nlu and speech apart). Deterministic for a given line: espeak and beam
search have no randomness, and the noise is seeded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import dataclass
from typing import Any, TextIO

from core.audio import SAMPLE_RATE
from speech import audio


@dataclass(frozen=True, slots=True)
class Clip:
    id: str
    text: str
    variant: str
    speed: int
    pitch: int
    gap: int
    codec: str
    noise_dbfs: float | None
    seed: int

    @classmethod
    def parse(cls, row: dict[str, Any]) -> Clip:
        noise = row.get("noise_dbfs")
        return cls(
            id=str(row["id"]),
            text=str(row["text"]),
            variant=str(row["variant"]),
            speed=int(row["speed"]),
            pitch=int(row["pitch"]),
            gap=int(row["gap"]),
            codec=str(row["codec"]),
            noise_dbfs=None if noise is None else float(noise),
            seed=int(row.get("seed", 0)),
        )


async def hear(
    clip: Clip, asr: Any, voices: dict[tuple[str, int, int, int], Any]
) -> dict[str, Any]:
    """Render one clip and decode it; the result row (never raises for a bad clip)."""
    from speech.tts.espeak import EspeakTts

    key = (clip.variant, clip.speed, clip.pitch, clip.gap)
    tts = voices.get(key)
    if tts is None:
        tts = voices.setdefault(
            key,
            EspeakTts(speed=clip.speed, pitch=clip.pitch, word_gap=clip.gap, variant=clip.variant),
        )
    pcm = await tts.synthesize(clip.text)
    heard = audio.phone_leg(pcm, clip.codec, clip.noise_dbfs, clip.seed)
    tr = await asyncio.to_thread(asr.transcribe_sync, heard, SAMPLE_RATE)
    return {
        "id": clip.id,
        "ear_text": tr.text,
        "confidence": round(tr.confidence, 3),
        "audio_s": round(tr.audio_s, 2),
        "decode_s": round(tr.decode_s, 3),
    }


async def serve(model_dir: str, src: TextIO, out: TextIO) -> int:
    """Decode every clip line of `src` in order, one JSON line each on `out`."""
    from speech.asr.whisper import WhisperAsr

    asr = WhisperAsr(model_dir, cpu_threads=1, max_workers=1)
    voices: dict[tuple[str, int, int, int], Any] = {}
    try:
        for line in src:
            if not line.strip():
                continue
            row = json.loads(line)
            try:
                result = await hear(Clip.parse(row), asr, voices)
            except (OSError, ValueError, KeyError, RuntimeError) as exc:
                result = {"id": str(row.get("id")), "error": f"{type(exc).__name__}: {exc}"}
            out.write(json.dumps(result, ensure_ascii=False) + "\n")
            out.flush()
    finally:
        await asr.aclose()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default=os.environ.get("WHISPER_MODEL_DIR", ""))
    args = parser.parse_args(argv)
    if not args.model_dir:
        parser.error("--model-dir (or $WHISPER_MODEL_DIR) is required")
    return asyncio.run(serve(args.model_dir, sys.stdin, sys.stdout))


if __name__ == "__main__":
    raise SystemExit(main())
