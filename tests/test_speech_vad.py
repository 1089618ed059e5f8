"""Endpointer: webrtcvad on synthesized speech, plus exact timing with a scripted classifier."""

from __future__ import annotations

import shutil
from typing import Any

import numpy as np
import pytest

from core.audio import pcm_seconds
from speech import audio
from speech.vad import Endpointer, VadEvent, VoiceEnded, VoiceStarted

FRAME = 320  # 20 ms at 8 kHz, PCM16
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")


def run(endpointer: Endpointer, pcm: bytes) -> list[VadEvent]:
    events: list[VadEvent] = []
    usable = len(pcm) - len(pcm) % FRAME
    for i in range(0, usable, FRAME):
        events.extend(endpointer.push(pcm[i : i + FRAME]))
    return events + endpointer.flush()


# --- scripted classifier: a frame is "voiced" when its first byte is non-zero ---------------

VOICED = b"\x01" * FRAME
QUIET = b"\x00" * FRAME


def scripted(**kwargs: Any) -> Endpointer:
    return Endpointer(classifier=lambda frame: frame[0] != 0, energy_floor_dbfs=None, **kwargs)


def test_exact_timing_pre_roll_and_tail() -> None:
    ep = scripted(min_speech_ms=100, end_silence_ms=600, pre_roll_ms=200, tail_ms=200)
    assert ep.frame_bytes == FRAME
    stream = QUIET * 50 + VOICED * 50 + QUIET * 40  # speech 1.0 s .. 2.0 s
    events = run(ep, stream)
    assert [type(e) for e in events] == [VoiceStarted, VoiceEnded]
    start, end = events
    assert isinstance(start, VoiceStarted) and isinstance(end, VoiceEnded)
    assert start.t == pytest.approx(1.0)
    assert end.t == pytest.approx(2.0)
    assert end.start_t == pytest.approx(0.8)  # 200 ms pre-roll
    assert end.duration_s == pytest.approx(1.4)  # pre-roll + 1 s speech + 200 ms tail
    assert not end.capped


def test_short_blips_and_short_pauses() -> None:
    ep = scripted(min_speech_ms=100, end_silence_ms=600)
    blip = QUIET * 20 + VOICED * 3 + QUIET * 40  # 60 ms click: not speech
    assert run(ep, blip) == []
    ep.reset()
    talk = VOICED * 20 + QUIET * 20 + VOICED * 20 + QUIET * 40  # 400 ms pause inside
    events = run(ep, talk)
    assert [type(e) for e in events] == [VoiceStarted, VoiceEnded]


def test_cap_emits_at_max_utterance_and_restarts() -> None:
    ep = scripted(max_utterance_s=1.0, pre_roll_ms=0)
    events = run(ep, VOICED * 125)  # 2.5 s of uninterrupted speech
    ends = [e for e in events if isinstance(e, VoiceEnded)]
    assert [e.capped for e in ends] == [True, True, False]
    assert ends[0].duration_s == pytest.approx(1.0)
    assert ends[0].t == pytest.approx(1.0)
    assert sum(e.duration_s for e in ends) == pytest.approx(2.5)


def test_flush_and_frame_size() -> None:
    ep = scripted()
    assert isinstance(run(ep, VOICED * 10)[-1], VoiceEnded)  # flushed at end of stream
    with pytest.raises(ValueError):
        ep.push(b"\x00" * 100)
    with pytest.raises(ValueError):
        Endpointer(sample_rate=11025)


# --- real webrtcvad --------------------------------------------------------------------------


@pytest.mark.parametrize("noise_dbfs", [-70, -60, -40])
def test_silence_and_steady_noise_give_nothing(noise_dbfs: float) -> None:
    rng = np.random.default_rng(0)
    noise = audio.float_to_pcm16(rng.normal(0, 10 ** (noise_dbfs / 20), 8000 * 3))
    for aggressiveness in (1, 2, 3):
        assert run(Endpointer(aggressiveness=aggressiveness), audio.silence(3) + noise) == []


@needs_espeak
@pytest.mark.asyncio
async def test_endpoints_two_spoken_phrases() -> None:
    from speech.tts.espeak import EspeakTts

    tts = EspeakTts()
    first = await tts.synthesize("我现在在开会，你明天下午再打给我吧")
    second = await tts.synthesize("多少钱")
    stream = audio.silence(1.0) + first + audio.silence(1.5) + second + audio.silence(1.0)
    events = run(Endpointer(), audio.ulaw_roundtrip(stream))
    assert [type(e) for e in events] == [VoiceStarted, VoiceEnded] * 2
    starts = [e.t for e in events if isinstance(e, VoiceStarted)]
    second_at = 1.0 + pcm_seconds(first) + 1.5
    assert starts[0] == pytest.approx(1.0, abs=0.15)
    assert starts[1] == pytest.approx(second_at, abs=0.15)
    ends = [e for e in events if isinstance(e, VoiceEnded)]
    assert ends[0].duration_s == pytest.approx(pcm_seconds(first), abs=0.5)
    assert ends[1].duration_s == pytest.approx(pcm_seconds(second), abs=0.5)


@needs_espeak
@pytest.mark.asyncio
async def test_cap_on_real_speech() -> None:
    from speech.tts.espeak import EspeakTts

    speech = await EspeakTts(speed=175).synthesize("我现在在开会你明天下午再打给我吧" * 2)
    events = run(Endpointer(max_utterance_s=1.5), speech)
    ends = [e for e in events if isinstance(e, VoiceEnded)]
    assert ends and ends[0].capped
    assert ends[0].duration_s == pytest.approx(1.5, abs=0.25)


def test_peek_and_silence_while_speaking() -> None:
    ep = scripted(min_speech_ms=100, end_silence_ms=600, pre_roll_ms=0, tail_ms=200)
    assert ep.peek() is None and ep.silence_ms == 0 and ep.utterance_ms == 0
    run_frames = [ep.push(f) for f in [VOICED] * 10 + [QUIET] * 15]
    assert not any(isinstance(e, VoiceEnded) for evs in run_frames for e in evs)
    assert ep.silence_ms == 300
    peeked = ep.peek()
    assert peeked is not None and ep.speaking  # peeking does not end the utterance
    (end,) = [e for e in run(ep, QUIET * 20) if isinstance(e, VoiceEnded)]
    assert end.pcm == peeked.pcm and end.t == peeked.t  # the final is what was peeked


# --- Silero confirmation (ONNX from an installed wheel, no torch) -------------------------------


def _silero_models() -> list[Any]:
    from speech.silero import _package_dir

    paths = []
    for pkg, rel in (
        ("silero_vad", "data/silero_vad.onnx"),
        ("faster_whisper", "assets/silero_vad_v6.onnx"),
    ):
        base = _package_dir(pkg)
        if base is not None and (base / rel).is_file():
            paths.append(base / rel)
    return paths or [pytest.param(None, marks=pytest.mark.skip(reason="no Silero ONNX installed"))]


@needs_espeak
@pytest.mark.parametrize("model", _silero_models(), ids=lambda p: getattr(p, "parent", p).name)
async def test_silero_tells_speech_from_noise(model: Any) -> None:
    pytest.importorskip("onnxruntime")
    from speech.silero import SileroVad
    from speech.tts.espeak import EspeakTts

    vad = SileroVad(model)
    speech = audio.ulaw_roundtrip(await EspeakTts(speed=110, variant="f2").synthesize("多少钱"))
    rng = np.random.default_rng(1)
    noise = audio.float_to_pcm16(rng.normal(0, 0.1, 8000 * 2))  # loud hiss, -20 dBFS
    clipped = audio.float_to_pcm16(np.clip(audio.pcm16_to_float(speech) * 4, -1, 1))  # +12 dB
    assert await vad.confirm(speech)
    assert await vad.confirm(clipped)
    assert not await vad.confirm(noise)
    assert not await vad.confirm(audio.silence(1.0))
    assert vad.speech_probs(b"").size == 0
    vad.close()


def test_silero_missing_model_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import speech.silero as silero

    monkeypatch.setattr(silero, "_package_dir", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps silero-vad"):
        silero.find_silero_model()
