"""coqui-tts engine for users who bring their own model (coqui ships no offline Chinese voice).

The model folder holds ``config.json`` and one checkpoint (``model.pth``, ``best_model.pth``,
``checkpoint_*.pth`` ...), loaded offline through ``TTS.utils.synthesizer.Synthesizer``. Text
is read aloud by ``normalize_for_tts`` first; ``frontend="pinyin"`` turns it into tone-numbered
pinyin ("ni3 hao3") for models trained on pinyin. Output is resampled to 8 kHz PCM16.

coqui-tts is an optional extra (``pip install .[coqui]``): imported only when this engine is
built, never by the rest of the robot. Inference runs in a worker thread, one at a time by
default (one shared model per node).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np

from core.audio import SAMPLE_RATE
from speech import audio
from speech.tts.frames import stream_clauses
from speech.tts.normalize import normalize_for_tts

EXTRA_HINT: Final = (
    "coqui-tts is not installed or not importable: pip install .[coqui] "
    "(it needs torch with a matching torchaudio and torchcodec)"
)
CHECKPOINT_PATTERNS: Final = ("model.pth", "best_model.pth", "model_file.pth", "checkpoint_*.pth",
                              "*.pth", "*.pt")  # fmt: skip


class CoquiModelError(ValueError):
    """The model folder lacks config.json or a checkpoint."""


def find_model_files(model_dir: str | Path) -> tuple[Path, Path]:
    """(config.json, checkpoint) inside `model_dir`; the newest match of the first pattern
    that matches wins."""
    folder = Path(model_dir)
    config = folder / "config.json"
    if not config.is_file():
        raise CoquiModelError(f"{folder} has no config.json (a coqui-tts model folder)")
    for pattern in CHECKPOINT_PATTERNS:
        found = sorted(folder.glob(pattern), key=lambda p: (p.stat().st_mtime_ns, p.name))
        if found:
            return config, found[-1]
    raise CoquiModelError(f"{folder} has no checkpoint ({', '.join(CHECKPOINT_PATTERNS)})")


def _import_synthesizer() -> tuple[Any, str]:
    try:
        import TTS
        from TTS.utils.synthesizer import Synthesizer
    except ImportError as exc:  # also coqui's own "torchaudio/torchcodec missing" errors
        raise ImportError(f"{EXTRA_HINT}; import failed: {str(exc).strip()[:200]}") from exc
    return Synthesizer, str(getattr(TTS, "__version__", "?"))


def _digest(*files: Path) -> str:
    h = hashlib.sha256()
    for f in files:
        stat = f.stat()
        h.update(f"{f.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return h.hexdigest()[:12]


class CoquiTts:
    """TtsEngine over a coqui-tts model folder. Construct once per process (loads the model)."""

    name = "coqui"

    def __init__(
        self,
        model_dir: str | Path,
        *,
        voice: str | None = None,
        frontend: Literal["text", "pinyin"] = "text",
        speaker: str | None = None,
        language: str | None = None,
        sample_rate: int = SAMPLE_RATE,
        threads: int = 1,
        max_concurrency: int = 1,
    ) -> None:
        if frontend not in ("text", "pinyin"):
            raise ValueError("frontend must be 'text' or 'pinyin'")
        config, checkpoint = find_model_files(model_dir)
        synthesizer_cls, coqui_version = _import_synthesizer()
        import torch

        torch.set_num_threads(max(1, threads))
        self._synth = synthesizer_cls(
            tts_checkpoint=str(checkpoint), tts_config_path=str(config), use_cuda=False
        )
        self.model_rate = int(self._synth.output_sample_rate)
        self.voice = voice or Path(model_dir).resolve().name
        self.sample_rate = sample_rate
        self.frontend = frontend
        self.speaker = speaker
        self.language = language
        self.version = (
            f"coqui-{coqui_version};m{_digest(config, checkpoint)};fe-{frontend};"
            f"spk-{speaker or '-'};lang-{language or '-'};r{sample_rate}"
        )
        self._slots = asyncio.Semaphore(max_concurrency)

    def to_model_text(self, text: str) -> str:
        """The exact text handed to the model."""
        if self.frontend == "pinyin":
            from speech.tts.espeak import to_pinyin

            return to_pinyin(text)
        return normalize_for_tts(text).strip()

    def _render(self, text: str) -> bytes:
        kwargs: dict[str, Any] = {"split_sentences": False}
        if self.speaker:
            kwargs["speaker_name"] = self.speaker
        if self.language:
            kwargs["language_name"] = self.language
        wav = np.asarray(self._synth.tts(text, **kwargs), dtype=np.float32)
        # Synthesizer.tts appends 10000 zero samples per sentence (0.45 s at 22.05 kHz): the
        # streaming would pause that long after every clause
        wav = np.trim_zeros(wav, trim="b")
        peak = float(np.max(np.abs(wav))) if wav.size else 0.0
        if peak > 1.0:
            wav = wav / peak
        resampled = audio.resample_float(wav, self.model_rate, self.sample_rate)
        return audio.float_to_pcm16(resampled)

    async def synthesize(self, text: str) -> bytes:
        """PCM16 mono at `sample_rate` (inference in a worker thread)."""
        model_text = self.to_model_text(text)
        if not any(c.isalnum() for c in model_text):
            return b""
        async with self._slots:
            return await asyncio.to_thread(self._render, model_text)

    async def synthesize_stream(self, text: str) -> AsyncGenerator[bytes, None]:
        """20 ms frames, clause by clause (first frame after the first clause)."""
        async for frame in stream_clauses(self.synthesize, text, sample_rate=self.sample_rate):
            yield frame
