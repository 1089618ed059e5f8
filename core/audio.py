"""The phone audio frame format, defined once.

Audio between the media workers, the call flow and the recognizer is signed 16-bit
little-endian mono PCM at 8 kHz, in 20 ms frames (160 samples, 320 bytes).
"""

from __future__ import annotations

SAMPLE_RATE = 8000
SAMPLE_WIDTH = 2  # bytes per sample (PCM16)
FRAME_MS = 20
FRAME_S = FRAME_MS / 1000
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000
FRAME_BYTES = FRAME_SAMPLES * SAMPLE_WIDTH
BYTES_PER_SECOND = SAMPLE_RATE * SAMPLE_WIDTH


def pcm_seconds(pcm: bytes | bytearray | memoryview | int, sample_rate: int = SAMPLE_RATE) -> float:
    """Duration of PCM16 mono audio (or of that many bytes) in seconds."""
    size = pcm if isinstance(pcm, int) else len(pcm)
    return size / (sample_rate * SAMPLE_WIDTH)


def pcm_ms(pcm: bytes | bytearray | memoryview | int, sample_rate: int = SAMPLE_RATE) -> int:
    """Duration of PCM16 mono audio (or of that many bytes) in whole milliseconds."""
    size = pcm if isinstance(pcm, int) else len(pcm)
    return size * 1000 // (sample_rate * SAMPLE_WIDTH)


def pcm_bytes(seconds: float, sample_rate: int = SAMPLE_RATE) -> int:
    """How many bytes of PCM16 mono audio last `seconds` (rounded to a whole sample)."""
    return round(seconds * sample_rate) * SAMPLE_WIDTH
