"""N-best hypotheses from Whisper (``Transcript.alternatives`` / ``Final.alternatives``) and the
G.711 A-law leg of the phone-channel round trip (``speech.asr.roundtrip``)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from speech import audio
from speech.asr.adapter import StreamAdapter
from speech.asr.base import Final, Transcript
from speech.asr.fake import FakeAsr
from speech.asr.whisper import WhisperAsr, alternatives
from speech.audio import alaw_decode, alaw_encode, alaw_roundtrip, phone_leg
from speech.vad import Endpointer

ROOT = Path(__file__).resolve().parent.parent
MODEL_DIR = ROOT / "build" / "models" / "whisper-base"


def test_alternatives_are_distinct_canonical_and_led_by_the_text() -> None:
    hyps = (
        ("價格上我們沒法接受", -3.0),
        ("价格上我们没法接受", -3.2),
        ("加格上我们没法接受", -4.0),
    )
    alts = alternatives("价格上我们没法接受", hyps)
    assert alts == (("价格上我们没法接受", -3.0), ("加格上我们没法接受", -4.0))


def test_no_alternatives_when_the_beam_agrees_or_is_empty() -> None:
    assert alternatives("多少钱", (("多少钱", -1.0), ("多少錢", -1.5))) == ()
    assert alternatives("多少钱", (("多少钱", -1.0),)) == ()
    assert alternatives("", (("", -1.0), ("嗯", -2.0))) == ()


def test_every_other_engine_and_event_defaults_to_no_alternatives() -> None:
    assert Transcript("好", 0.9, "zh", 1.0, 0.1).alternatives == ()
    assert Final("好", 0.9, 0.0, 1.0).alternatives == ()
    tr = asyncio.run(FakeAsr().transcribe(audio.silence(0.5)))
    assert tr.alternatives == ()


class _NBestAsr(FakeAsr):
    """A fake whose final decodes carry a 2-best, as Whisper's do."""

    async def transcribe(self, pcm: bytes, *args: object, **kwargs: object) -> Transcript:
        tr = await super().transcribe(pcm, *args, **kwargs)  # type: ignore[arg-type]
        alts = ((tr.text, -1.0), ("加格太贵了", -1.7))
        return Transcript(tr.text, tr.confidence, tr.language, tr.audio_s, tr.decode_s, alts)


async def test_the_stream_final_carries_the_engines_alternatives() -> None:
    frame = 320
    voiced, quiet = b"\x01" * frame, b"\x00" * frame
    endpointer = lambda **kw: Endpointer(  # noqa: E731
        classifier=lambda f: f[0] != 0, energy_floor_dbfs=None, min_speech_ms=100, **kw
    )
    stream = StreamAdapter(_NBestAsr(["价格太贵了"]), endpointer, partial_interval_s=None).stream()
    pcm = quiet * 20 + voiced * 60 + quiet * 60
    for i in range(0, len(pcm), frame):
        stream.push(pcm[i : i + frame])
    stream.end_input()
    async with asyncio.timeout(5):
        finals = [ev async for ev in stream if isinstance(ev, Final)]
    assert [f.text for f in finals] == ["价格太贵了"]
    assert finals[0].alternatives == (("价格太贵了", -1.0), ("加格太贵了", -1.7))


def test_alaw_roundtrip_is_close_and_differs_from_mulaw() -> None:
    t = np.arange(8000) / 8000
    pcm = audio.float_to_pcm16(0.3 * np.sin(2 * np.pi * 440 * t))
    back = np.frombuffer(alaw_roundtrip(pcm), "<i2").astype(float)
    ref = np.frombuffer(pcm, "<i2").astype(float)
    assert len(alaw_encode(pcm)) == len(pcm) // 2
    assert np.abs(back - ref).max() < 0.04 * 32768  # 8-bit companding error, not garbage
    assert alaw_roundtrip(pcm) != audio.ulaw_roundtrip(pcm)
    # every code decodes to its own level, symmetric around zero
    levels = np.frombuffer(alaw_decode(bytes(range(256))), "<i2")
    assert len(set(levels.tolist())) == 256
    assert sorted(levels.tolist()) == sorted((-levels).tolist())


def test_phone_leg_rejects_unknown_codecs_and_seeds_its_noise() -> None:
    pcm = audio.silence(0.2)
    assert phone_leg(pcm, "alaw", -40.0, 3) == phone_leg(pcm, "alaw", -40.0, 3)
    assert phone_leg(pcm, "alaw", -40.0, 3) != phone_leg(pcm, "alaw", -40.0, 4)
    with pytest.raises(ValueError):
        phone_leg(pcm, "gsm", None, 0)


# --- real model -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def asr() -> Iterator[WhisperAsr]:
    pytest.importorskip("faster_whisper")
    if not (MODEL_DIR / "model.bin").is_file():
        pytest.skip("Whisper model not built (make install)")
    engine = WhisperAsr(MODEL_DIR, max_workers=1, beam_size=2, num_hypotheses=2)
    yield engine
    asyncio.run(engine.aclose())


@pytest.mark.asr
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")
async def test_whisper_returns_ranked_alternatives_for_a_phone_clip(asr: WhisperAsr) -> None:
    from speech.tts.espeak import EspeakTts

    tts = EspeakTts(speed=135, variant="f3")
    pcm = audio.ulaw_roundtrip(await tts.synthesize("价格上我们没法接受"))
    result = await asr.transcribe(pcm, 8000)
    assert result.text
    assert len(result.alternatives) >= 2
    assert result.alternatives[0][0] == result.text
    texts = [text for text, _ in result.alternatives]
    assert len(set(texts)) == len(texts)
    scores = [score for _, score in result.alternatives]
    assert all(score <= 0.0 for score in scores)
    draft = await asr.transcribe(pcm, 8000, draft=True)  # greedy: no n-best
    assert draft.alternatives == ()
