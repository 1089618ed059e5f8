"""PCM helpers: resampling, WAV, mu-law, RMS."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from core.audio import pcm_seconds
from speech import audio


def _tone(freq: float, seconds: float, rate: int, amp: float = 0.5) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return audio.float_to_pcm16(amp * np.sin(2 * math.pi * freq * t))


def test_upsample_keeps_a_tone_and_doubles_the_length() -> None:
    pcm = _tone(440, 1.0, 8000)
    up = audio.upsample_8k_to_16k(pcm)
    assert len(up) == 2 * len(pcm)
    y = audio.pcm16_to_float(up)
    t = np.arange(y.size) / 16000
    ref = 0.5 * np.sin(2 * math.pi * 440 * t)
    assert np.abs(y[400:-400] - ref[400:-400]).max() < 1e-3


def test_downsample_removes_what_would_alias() -> None:
    high = _tone(6000, 0.5, 16000)  # above the 4 kHz Nyquist of 8 kHz
    low = _tone(1000, 0.5, 16000)
    assert audio.rms(audio.downsample_16k_to_8k(high)) < 0.01
    assert audio.rms(audio.downsample_16k_to_8k(low)) == pytest.approx(0.5 / math.sqrt(2), 0.02)


def test_espeak_rate_to_phone_rate() -> None:
    pcm = _tone(500, 1.0, 22050)
    out = audio.resample_pcm16(pcm, 22050, 8000)
    assert pcm_seconds(out) == pytest.approx(1.0, abs=0.001)


def test_wav_round_trip_and_streaming_header() -> None:
    pcm = _tone(300, 0.1, 8000)
    wav = audio.to_wav(pcm, 8000)
    parsed = audio.parse_wav(wav)
    assert parsed == audio.WavAudio(pcm, 8000)
    # espeak-ng --stdout writes ~2 GiB sizes in the RIFF and data headers
    streamed = wav[:4] + b"\xff\xff\xff\x7f" + wav[8:40] + b"\x00\xf0\xff\x7f" + wav[44:]
    assert audio.parse_wav(streamed).pcm == pcm
    with pytest.raises(ValueError):
        audio.parse_wav(b"not a wav file at all")


def test_wav_file_helpers(tmp_path: Path) -> None:
    pcm = _tone(300, 0.05, 16000)
    audio.write_wav(tmp_path / "a.wav", pcm, 16000)
    assert audio.read_wav(tmp_path / "a.wav") == audio.WavAudio(pcm, 16000)


def test_ulaw_matches_the_g711_reference_points() -> None:
    assert audio.ulaw_encode(b"\x00\x00") == b"\xff"
    assert (
        audio.ulaw_decode(b"\xff\x7f\x00\x80")
        == np.array([0, 0, -32124, 32124], dtype="<i2").tobytes()
    )
    pcm = _tone(1000, 0.2, 8000)
    back = audio.ulaw_roundtrip(pcm)
    x, y = audio.pcm16_to_float(pcm), audio.pcm16_to_float(back)
    snr = 10 * math.log10(float(np.sum(x**2)) / float(np.sum((x - y) ** 2)))
    assert snr > 30


def test_rms_and_scaling() -> None:
    assert audio.rms(b"") == 0.0
    assert audio.rms_dbfs(audio.silence(0.1)) == float("-inf")
    pcm = _tone(1000, 0.5, 8000, amp=0.1)
    scaled = audio.scale_to_rms(pcm, -20.0)
    assert audio.rms_dbfs(scaled) == pytest.approx(-20.0, abs=0.1)
