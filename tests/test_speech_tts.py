"""EspeakTts front end and rendering; FakeTts determinism."""

from __future__ import annotations

import asyncio
import shutil

import pytest

from core.audio import pcm_seconds
from speech import audio
from speech.tts.espeak import EspeakTts, to_pinyin
from speech.tts.fake import FakeTts, fake_duration_s

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")


def test_pinyin_front_end() -> None:
    assert to_pinyin("喂，你好！") == "wei4, ni2 hao3."
    assert to_pinyin("多少钱？") == "duo1 shao3 qian2?"
    assert to_pinyin("好的") == "hao3 de5"  # neutral tone as 5
    assert to_pinyin("不要") == "bu2 yao4"  # 不 sandhi
    assert to_pinyin("打8折") == "da3 ba1 zhe2"  # digits spelled
    assert to_pinyin("AI语音") == "a i yu3 yin1"  # acronym spelled by letter names
    assert to_pinyin("女") == "nv3"
    assert to_pinyin("，，。") == ""


@needs_espeak
def test_refuses_the_broken_cmn_voice() -> None:
    with pytest.raises(ValueError, match="cmn-latn-pinyin"):
        EspeakTts("cmn")
    with pytest.raises(ValueError):
        EspeakTts("klingon")


@needs_espeak
@pytest.mark.asyncio
async def test_renders_8khz_pcm_of_plausible_duration() -> None:
    tts = EspeakTts(speed=150)
    short = await tts.synthesize("多少钱")
    long = await tts.synthesize("我现在在开会，你明天下午再打给我吧")
    assert len(short) % 2 == 0
    assert 0.6 < pcm_seconds(short) < 2.5
    assert 2.5 < pcm_seconds(long) < 8.0
    assert audio.rms_dbfs(long) > -35
    slow = await EspeakTts(speed=100).synthesize("多少钱")
    assert pcm_seconds(slow) > pcm_seconds(short)
    native = await tts.synthesize_native("多少钱")
    assert native.sample_rate == 22050
    assert pcm_seconds(native.pcm, 22050) == pytest.approx(pcm_seconds(short), abs=0.01)
    assert await tts.synthesize("。") == b""
    assert await tts.synthesize("多少钱") == short  # repeatable (sox without dither)


@needs_espeak
@pytest.mark.asyncio
async def test_numpy_resampler_fallback_and_cantonese() -> None:
    via_numpy = await EspeakTts(use_sox=False).synthesize("你好")
    via_sox = await EspeakTts(use_sox=True).synthesize("你好")
    assert abs(len(via_numpy) - len(via_sox)) <= 4
    yue = await EspeakTts("yue").synthesize("你好，我而家好忙")
    assert pcm_seconds(yue) > 1.0


@needs_espeak
def test_version_changes_with_output_affecting_settings() -> None:
    a, b = EspeakTts(speed=150), EspeakTts(speed=120)
    assert a.version != b.version
    assert a.version.startswith("espeak-ng-")


@needs_espeak
@pytest.mark.asyncio
async def test_does_not_block_the_loop() -> None:
    tts = EspeakTts()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    task = asyncio.create_task(ticker())
    await asyncio.gather(*(tts.synthesize("您好，我是智能助理小安") for _ in range(4)))
    task.cancel()
    assert ticks >= 3


@pytest.mark.asyncio
async def test_fake_tts_is_deterministic_and_sized_by_text() -> None:
    tts = FakeTts()
    one = await tts.synthesize("你好，请讲")
    assert one == await tts.synthesize("你好，请讲")
    assert one != await tts.synthesize("别再打了，")
    assert pcm_seconds(one) == pytest.approx(fake_duration_s("你好，请讲"))
    assert fake_duration_s("你好，请讲") == pytest.approx(4 * 0.2 + 0.15)
    assert tts.calls == ["你好，请讲", "你好，请讲", "别再打了，"]
