"""PromptCache: hits, misses, disk persistence, one render under concurrency."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from speech.cache import PromptCache
from speech.tts.fake import FakeStreamingTts, FakeTts


@pytest.mark.asyncio
async def test_miss_then_memory_hit_then_disk_hit(tmp_path: Path) -> None:
    tts = FakeTts()
    cache = PromptCache(tts, tmp_path)
    first = await cache.get("您好")
    assert await cache.get("您好") == first
    assert (cache.stats.misses, cache.stats.memory_hits) == (1, 1)
    assert cache.path_for("您好").is_file()

    fresh = PromptCache(tts, tmp_path)  # new process, same directory
    assert await fresh.get("您好") == first
    assert (fresh.stats.disk_hits, fresh.stats.misses) == (1, 0)
    assert tts.calls == ["您好"]


@pytest.mark.asyncio
async def test_concurrent_requests_render_once(tmp_path: Path) -> None:
    tts = FakeTts(delay_s=0.05)
    cache = PromptCache(tts, tmp_path)
    results = await asyncio.gather(*(cache.get("现在方便吗？") for _ in range(10)))
    assert len(set(results)) == 1
    assert tts.calls == ["现在方便吗？"]
    assert cache.stats.misses == 1 and cache.stats.shared == 9


@pytest.mark.asyncio
async def test_cancelled_caller_does_not_cancel_the_shared_render(tmp_path: Path) -> None:
    cache = PromptCache(FakeTts(delay_s=0.05), tmp_path)
    first = asyncio.create_task(cache.get("你好"))
    second = asyncio.create_task(cache.get("你好"))
    await asyncio.sleep(0.01)
    first.cancel()
    assert await second
    assert first.cancelled()


@pytest.mark.asyncio
async def test_key_depends_on_voice_and_version(tmp_path: Path) -> None:
    a = PromptCache(FakeTts(voice="a"), tmp_path)
    b = PromptCache(FakeTts(voice="b"), tmp_path)
    assert a.key("你好") != b.key("你好")
    assert await a.get("你好") != await b.get("你好")


@pytest.mark.asyncio
async def test_prefetch(tmp_path: Path) -> None:
    tts = FakeTts()
    cache = PromptCache(tts, tmp_path)
    assert await cache.prefetch(["一", "二", "一", "三"]) == 3
    assert await cache.prefetch(["一", "二"]) == 0
    assert cache.contains("三") and not cache.contains("四")
    assert sorted(tts.calls) == ["一", "三", "二"]


@pytest.mark.asyncio
async def test_failed_render_is_not_cached(tmp_path: Path) -> None:
    class Broken(FakeTts):
        async def synthesize(self, text: str) -> bytes:
            raise RuntimeError("boom")

    cache = PromptCache(Broken(), tmp_path)
    with pytest.raises(RuntimeError):
        await cache.get("你好")
    with pytest.raises(RuntimeError):
        await cache.get("你好")  # retried, not a cached failure
    assert cache.stats.misses == 2


@pytest.mark.asyncio
async def test_memory_tier_is_bounded(tmp_path: Path) -> None:
    cache = PromptCache(FakeTts(), tmp_path, max_memory_bytes=10_000)
    for text in ["一二三", "四五六", "七八九"]:  # 9600 bytes each at 8 kHz
        await cache.get(text)
    await cache.get("一二三")
    assert cache.stats.disk_hits == 1  # evicted from memory, found on disk


@pytest.mark.asyncio
async def test_hit_rate_over_a_campaign(tmp_path: Path) -> None:
    cache = PromptCache(FakeTts(), tmp_path)
    lines = ["您好", "再见", "多少钱"]
    await cache.prefetch(lines)
    cache.stats.reset()
    for _ in range(10):
        for line in lines:
            await cache.get(line)
    assert cache.stats.hit_rate == 1.0 and cache.stats.as_dict()["requests"] == 30
    await cache.get("新的一句")
    assert cache.stats.hit_rate == pytest.approx(30 / 31)


@pytest.mark.asyncio
async def test_key_covers_text_engine_voice_and_version(tmp_path: Path) -> None:
    class Versioned(FakeTts):
        version = "2"

    base = PromptCache(FakeTts(), tmp_path)
    assert base.key("你好") != base.key("你好。")
    assert base.key("你好") != PromptCache(Versioned(), tmp_path).key("你好")
    assert base.key("你好") != PromptCache(FakeTts(sample_rate=16000), tmp_path,
                                           sample_rate=16000).key("你好")  # fmt: skip


@pytest.mark.asyncio
async def test_stream_renders_once_then_plays_from_the_cache(tmp_path: Path) -> None:
    tts = FakeTts()
    cache = PromptCache(tts, tmp_path)
    first = [f async for f in cache.stream("您好，请讲")]
    assert {len(f) for f in first} == {320} and cache.stats.misses == 1
    second = [f async for f in cache.stream("您好，请讲")]
    assert second == first and cache.stats.memory_hits == 1
    assert tts.calls == ["您好，请讲"]
    fresh = PromptCache(tts, tmp_path)
    assert [f async for f in fresh.stream("您好，请讲")] == first  # from disk
    interrupted = cache.stream("没播完的一句")
    await anext(interrupted)
    await interrupted.aclose()
    assert not cache.contains("没播完的一句")  # a barge-in does not cache a partial line


LINE = "您好我是小安，我们的智能客服系统可以自动接听。您现在方便吗？"  # three clauses
LAST = "您现在方便吗？"  # rendered while the first two play (one clause of look-ahead)


@pytest.mark.asyncio
async def test_speak_gives_a_cached_line_in_one_piece(tmp_path: Path) -> None:
    cache = PromptCache(FakeTts(), tmp_path)
    whole = await cache.get("您好，请讲")
    assert [c async for c in cache.speak("您好，请讲")] == [whole]  # from memory
    fresh = PromptCache(FakeTts(), tmp_path)
    assert [c async for c in fresh.speak("您好，请讲")] == [whole]  # from disk
    assert fresh.stats.disk_hits == 1 and fresh.stats.misses == 0


@pytest.mark.asyncio
async def test_speak_streams_a_new_line_while_caching_it(tmp_path: Path) -> None:
    tts = FakeStreamingTts(clause_s=0.2)
    cache = PromptCache(tts, tmp_path)
    chunks = cache.speak(LINE)
    first = await anext(chunks)
    assert len(first) == 320 and LAST not in tts.rendered  # the rest still renders
    rest = [c async for c in chunks]
    assert len(tts.rendered) == 3 and cache.contains(LINE)
    assert [c async for c in cache.speak(LINE)] == [first + b"".join(rest)]  # now one piece
    assert tts.calls == [LINE]


@pytest.mark.asyncio
async def test_last_listener_leaving_cancels_the_rest_of_the_line(tmp_path: Path) -> None:
    tts = FakeStreamingTts(clause_s=0.2)
    cache = PromptCache(tts, tmp_path)
    chunks = cache.speak(LINE)
    await anext(chunks)
    await asyncio.sleep(0.05)  # the last clause is rendering now
    await chunks.aclose()  # barge-in
    await asyncio.sleep(0.3)
    assert tts.cancelled == [LAST] and LAST not in tts.rendered
    assert not cache.contains(LINE)


@pytest.mark.asyncio
async def test_a_listener_leaving_keeps_a_render_others_follow(tmp_path: Path) -> None:
    tts = FakeStreamingTts(clause_s=0.05)
    cache = PromptCache(tts, tmp_path)
    leaver, stayer = cache.speak(LINE), cache.speak(LINE)
    first = await anext(leaver)
    assert await anext(stayer) == first  # joined the same render
    await leaver.aclose()
    rest = [c async for c in stayer]
    assert tts.cancelled == [] and len(tts.rendered) == 3 and cache.contains(LINE)
    assert cache.stats.shared == 1 and tts.calls == [LINE]
    assert await cache.get(LINE) == first + b"".join(rest)


@pytest.mark.asyncio
async def test_a_get_keeps_a_render_its_streaming_listener_left(tmp_path: Path) -> None:
    tts = FakeStreamingTts(clause_s=0.05)
    cache = PromptCache(tts, tmp_path)
    chunks = cache.speak(LINE)
    first = await anext(chunks)
    whole = asyncio.create_task(cache.get(LINE))
    await asyncio.sleep(0)
    await chunks.aclose()
    assert (await whole).startswith(first) and cache.contains(LINE)
    assert tts.cancelled == []
