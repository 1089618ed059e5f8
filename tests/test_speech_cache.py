"""PromptCache: hits, misses, disk persistence, one render under concurrency."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from speech.cache import PromptCache
from speech.tts.fake import FakeTts


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
