"""TTS engines (see ``base.TtsEngine``): espeak-ng, recorded prompts with spliced slots,
coqui-tts (bring your own model), and the fake. Engines are imported on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from speech.tts.base import PromptSource, TtsEngine
from speech.tts.normalize import normalize_for_tts

if TYPE_CHECKING:
    from speech.tts.coqui import CoquiTts
    from speech.tts.espeak import EspeakTts
    from speech.tts.fake import FakeStreamingTts, FakeTts
    from speech.tts.recorded import RecordedTts

__all__ = [
    "CoquiTts",
    "EspeakTts",
    "FakeStreamingTts",
    "FakeTts",
    "PromptSource",
    "RecordedTts",
    "TtsEngine",
    "normalize_for_tts",
]

_LAZY = {
    "CoquiTts": "speech.tts.coqui",
    "EspeakTts": "speech.tts.espeak",
    "FakeStreamingTts": "speech.tts.fake",
    "FakeTts": "speech.tts.fake",
    "RecordedTts": "speech.tts.recorded",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'speech.tts' has no attribute {name!r}")
