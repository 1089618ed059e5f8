"""Answering-machine audio cues: beeps by tone, speech runs by webrtcvad, on synthetic and
espeak-ng audio (a beep is found, speech and ringback-free silence are not beeps)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from core.audio import FRAME_BYTES
from speech import audio
from speech.amd import AudioCues, beep
from speech.cues import Cues

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")


def cues_of(pcm: bytes, **kwargs: object) -> Cues:
    analyzer = AudioCues(**kwargs)  # type: ignore[arg-type]
    for i in range(0, len(pcm) - len(pcm) % FRAME_BYTES, FRAME_BYTES):
        analyzer.push(pcm[i : i + FRAME_BYTES])
    return analyzer.cues()


@pytest.mark.parametrize("hz", [440.0, 1000.0, 1400.0, 1950.0])
def test_a_beep_is_found_with_its_frequency(hz: float) -> None:
    pcm = audio.silence(0.5) + beep(hz, 300) + audio.silence(0.5)
    c = cues_of(audio.ulaw_roundtrip(pcm))
    assert c.beep_t == pytest.approx(0.8, abs=0.06)
    assert c.beep_hz == pytest.approx(hz, abs=30)
    assert c.speech_s == 0 and c.runs == 0  # a tone is never speech


def test_too_short_or_out_of_band_tones_are_not_beeps() -> None:
    assert cues_of(audio.silence(0.3) + beep(1000, 80) + audio.silence(0.3)).beep_t is None
    assert cues_of(audio.silence(0.3) + beep(250, 500) + audio.silence(0.3)).beep_t is None
    assert cues_of(audio.silence(0.3) + beep(2600, 500) + audio.silence(0.3)).beep_t is None


def test_noise_is_no_beep() -> None:
    rng = np.random.default_rng(3)
    noise = audio.float_to_pcm16(rng.normal(0, 0.1, 8000))
    assert cues_of(noise).beep_t is None


def test_speech_runs_and_silence_with_a_scripted_classifier() -> None:
    voiced, quiet = audio.add_noise(audio.silence(0.02), -20, 1), audio.silence(0.02)
    frames = [quiet] * 10 + [voiced] * 25 + [quiet] * 20 + [voiced] * 10 + [quiet] * 30
    c = cues_of(b"".join(frames), classifier=lambda f: f != quiet, gap_ms=300)
    assert c.runs == 2  # a 400 ms pause ends a run
    assert c.first_speech_t == pytest.approx(0.2)
    assert c.longest_run_s == pytest.approx(0.5)
    assert c.run_s == pytest.approx(0.2)
    assert not c.speaking and c.silence_s == pytest.approx(0.6)
    assert c.speech_s == pytest.approx(0.7)


def test_a_pause_shorter_than_the_gap_keeps_one_run() -> None:
    voiced, quiet = audio.add_noise(audio.silence(0.02), -20, 1), audio.silence(0.02)
    frames = [voiced] * 20 + [quiet] * 5 + [voiced] * 20 + [quiet] * 2
    c = cues_of(b"".join(frames), classifier=lambda f: f != quiet, gap_ms=300)
    assert c.runs == 1 and c.speaking and c.run_s == pytest.approx(0.9)


def test_frames_of_the_wrong_size_are_refused() -> None:
    with pytest.raises(ValueError, match="320 bytes"):
        AudioCues().push(b"\0" * 100)


@needs_espeak
async def test_espeak_greetings_short_and_long() -> None:
    from speech.tts.espeak import EspeakTts

    tts = EspeakTts()
    hello = await tts.synthesize("喂，你好")
    greeting = await tts.synthesize("您好，我现在不方便接听电话，请在提示音后留言")
    short = cues_of(audio.silence(0.3) + hello + audio.silence(1.0))
    long = cues_of(audio.silence(0.3) + greeting + beep() + audio.silence(0.5))
    assert short.runs == 1 and short.longest_run_s < 1.5 and short.silence_s > 0.5
    assert short.beep_t is None
    assert long.longest_run_s > 4.0 and long.beep_t is not None
