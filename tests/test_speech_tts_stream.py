"""Streaming TTS: clause splitting, frames, look-ahead, early first frame, cancellation."""

from __future__ import annotations

import asyncio
import shutil
import time

import pytest

from core.audio import pcm_seconds
from speech import audio
from speech.audio import frame_bytes_for
from speech.tts.fake import FakeTts
from speech.tts.frames import pcm_frames, split_clauses, stream_clauses

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")


def test_split_clauses_merges_tiny_pieces() -> None:
    assert split_clauses("好的，我们的系统可以自动接听。您有兴趣吗？") == [
        "好的，我们的系统可以自动接听。", "您有兴趣吗？"]  # fmt: skip
    assert split_clauses("您好，我是小安，AI语音助理。") == ["您好，我是小安，", "AI语音助理。"]
    assert split_clauses("。。") == [] and split_clauses("再见！") == ["再见！"]


def test_frames_are_padded_and_sized() -> None:
    assert frame_bytes_for(8000) == 320 and frame_bytes_for(16000) == 640
    frames = list(pcm_frames(b"\x01\x00" * 170))
    assert [len(f) for f in frames] == [320, 320] and frames[1].endswith(b"\x00" * 300)
    with pytest.raises(ValueError):
        frame_bytes_for(11025, 20)


@pytest.mark.asyncio
async def test_first_frame_arrives_after_the_first_clause() -> None:
    calls: list[tuple[str, float]] = []

    async def slow(text: str) -> bytes:
        calls.append((text, time.monotonic()))
        await asyncio.sleep(0.05 * len(text))
        return audio.silence(0.1)

    text = "您好我是小安，我们的智能客服系统可以自动接听和拨打电话。"
    started = time.monotonic()
    stream = stream_clauses(slow, text)
    await anext(stream)
    first_s = time.monotonic() - started
    assert first_s < 0.05 * len(text) / 2  # well before the whole line could render
    rest = [f async for f in stream]
    assert len(rest) == 9 and len(calls) == 2
    assert calls[1][1] - calls[0][1] < 0.05  # the second clause renders during the first


@pytest.mark.asyncio
async def test_closing_cancels_the_look_ahead() -> None:
    cancelled = asyncio.Event()

    async def render(text: str) -> bytes:
        if "二" in text:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                cancelled.set()
                raise
        return audio.silence(0.04)

    stream = stream_clauses(render, "第一句话说完了，第二句话还在渲染。")
    await anext(stream)
    await stream.aclose()
    await asyncio.wait_for(cancelled.wait(), 1.0)


@pytest.mark.asyncio
async def test_fake_stream_matches_whole_render() -> None:
    tts = FakeTts()
    whole = await tts.synthesize("你好，请讲")
    joined = b"".join([f async for f in tts.synthesize_stream("你好，请讲")])
    assert joined[: len(whole)] == whole and len(joined) - len(whole) < 320


@needs_espeak
@pytest.mark.asyncio
async def test_espeak_streams_20ms_frames_of_plausible_length() -> None:
    from speech.tts.espeak import EspeakTts

    tts = EspeakTts()
    text = "您好，我是云启科技的智能助理小安。想给您介绍一下我们的产品，您现在方便吗？"
    frames = [f async for f in tts.synthesize_stream(text)]
    whole = await tts.synthesize(text)
    assert {len(f) for f in frames} == {320}
    assert abs(len(frames) * 0.02 - pcm_seconds(whole)) < 0.5
