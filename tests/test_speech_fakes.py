"""FakeAsr: scripted transcripts for tests elsewhere."""

from __future__ import annotations

import pytest

from speech import FakeAsr, FakeTts


@pytest.mark.asyncio
async def test_fake_asr_queue_mapping_and_default() -> None:
    tts = FakeTts()
    hello = await tts.synthesize("喂，你好")
    asr = FakeAsr(["多少钱", "别再打了"], by_audio={hello: "喂，你好"}, default="嗯")
    assert (await asr.transcribe(hello)).text == "喂，你好"
    assert (await asr.transcribe(b"\x00" * 1600)).text == "多少钱"
    second = await asr.transcribe(b"\x00" * 1600, prompt="销售")
    assert second.text == "别再打了" and second.audio_s == pytest.approx(0.1)
    assert (await asr.transcribe(b"")).text == "嗯"
    asr.remember(b"\x01\x00", "好的")
    assert (await asr.transcribe(b"\x01\x00")).text == "好的"
    assert asr.calls[2] == (pytest.approx(0.1), "销售")
    await asr.aclose()
    with pytest.raises(RuntimeError):
        await asr.transcribe(hello)
