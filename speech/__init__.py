"""Speech layer: ASR, VAD/endpointing, TTS, prompt cache, PCM helpers.

Heavy engines (``WhisperAsr``, ``EspeakTts``) are imported on first use, so ``import speech``
stays cheap and works without the optional extras.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from speech.asr.adapter import StreamAdapter
from speech.asr.base import (
    AsrEngine,
    AsrEvent,
    AsrStreamError,
    Final,
    Partial,
    RecognizeStream,
    StreamingAsr,
    Transcript,
)
from speech.asr.fake import FakeAsr, FakeStreamAsr
from speech.asr.fallback import FallbackAdapter
from speech.asr.routing import LanguageRouter
from speech.cache import CacheStats, PromptCache
from speech.tts.base import TtsEngine
from speech.tts.fake import FakeTts
from speech.vad import Endpointer, VadEvent, VoiceEnded, VoiceStarted

if TYPE_CHECKING:
    from speech.asr.vosk import VoskAsr
    from speech.asr.whisper import SALES_REPLIES_PROMPT, WhisperAsr
    from speech.silero import SileroVad
    from speech.tts.espeak import EspeakTts

__all__ = [
    "AsrEngine",
    "AsrEvent",
    "AsrStreamError",
    "FakeStreamAsr",
    "FallbackAdapter",
    "Final",
    "LanguageRouter",
    "Partial",
    "RecognizeStream",
    "SileroVad",
    "StreamAdapter",
    "StreamingAsr",
    "VoskAsr",
    "CacheStats",
    "Endpointer",
    "EspeakTts",
    "FakeAsr",
    "FakeTts",
    "PromptCache",
    "SALES_REPLIES_PROMPT",
    "Transcript",
    "TtsEngine",
    "VadEvent",
    "VoiceEnded",
    "VoiceStarted",
    "WhisperAsr",
]

_LAZY = {
    "WhisperAsr": "speech.asr.whisper",
    "SALES_REPLIES_PROMPT": "speech.asr.whisper",
    "VoskAsr": "speech.asr.vosk",
    "SileroVad": "speech.silero",
    "EspeakTts": "speech.tts.espeak",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'speech' has no attribute {name!r}")
