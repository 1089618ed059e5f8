"""Prompt cache: render each (text, engine, voice, version) once, keep it on disk and in memory.

Fixed script lines are rendered once per campaign (``prefetch``); live lines are rendered on
first use. The key is (text, engine name, voice, engine version, sample rate): an engine's
``version`` changes whenever its output would (espeak-ng version and settings, recordings and
their backup engine, a coqui checkpoint). ``stats`` counts hits and misses (``hit_rate``);
``stream`` plays a cached line as 20 ms frames, or streams a new one from the engine while
rendering it for the cache. Concurrent requests for the same key share one render, and a
caller cancelled by barge-in does not cancel the render the others are waiting for.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
from collections import OrderedDict
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass
from pathlib import Path

from speech import audio
from speech.tts.base import TtsEngine
from speech.tts.frames import pcm_frames

log = logging.getLogger(__name__)


@dataclass(slots=True)
class CacheStats:
    memory_hits: int = 0
    disk_hits: int = 0
    misses: int = 0  # renders started
    shared: int = 0  # requests that joined a render already in flight

    @property
    def hits(self) -> int:
        return self.memory_hits + self.disk_hits

    @property
    def requests(self) -> int:
        return self.hits + self.misses + self.shared

    @property
    def hit_rate(self) -> float:
        """Share of requests served without a new render (joining one in flight counts)."""
        return (self.hits + self.shared) / self.requests if self.requests else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "requests": self.requests, "memory_hits": self.memory_hits,
            "disk_hits": self.disk_hits, "shared": self.shared, "misses": self.misses,
            "hit_rate": round(self.hit_rate, 4),
        }  # fmt: skip

    def reset(self) -> None:
        self.memory_hits = self.disk_hits = self.misses = self.shared = 0


def _consume_exception(task: asyncio.Task[bytes]) -> None:
    if not task.cancelled():
        task.exception()


class PromptCache:
    """Caches 8 kHz PCM16 renders of `engine` under `directory` as WAV files."""

    def __init__(
        self,
        engine: TtsEngine,
        directory: str | Path,
        *,
        sample_rate: int = audio.PHONE_RATE,
        max_memory_bytes: int = 64 * 1024 * 1024,
        prefetch_concurrency: int = 4,
    ) -> None:
        self.engine = engine
        self.directory = Path(directory)
        self.sample_rate = sample_rate
        self.max_memory_bytes = max_memory_bytes
        self.stats = CacheStats()
        self._memory: OrderedDict[str, bytes] = OrderedDict()
        self._memory_bytes = 0
        self._inflight: dict[str, asyncio.Task[bytes]] = {}
        self._prefetch_slots = asyncio.Semaphore(prefetch_concurrency)

    def key(self, text: str) -> str:
        ident = [text, self.engine.name, self.engine.voice, self.engine.version, self.sample_rate]
        return hashlib.sha256(json.dumps(ident, ensure_ascii=False).encode()).hexdigest()

    def path_for(self, text: str) -> Path:
        return self._path(self.key(text))

    def _path(self, key: str) -> Path:
        return self.directory / f"{key[:32]}.wav"

    # --- memory tier (LRU bounded by bytes) -----------------------------------------------------

    def _remember(self, key: str, pcm: bytes) -> None:
        if key in self._memory:
            self._memory.move_to_end(key)
            return
        self._memory[key] = pcm
        self._memory_bytes += len(pcm)
        while self._memory_bytes > self.max_memory_bytes and len(self._memory) > 1:
            _, dropped = self._memory.popitem(last=False)
            self._memory_bytes -= len(dropped)

    # --- disk tier (blocking helpers, run in a thread) ----------------------------------------

    def _load(self, key: str) -> bytes | None:
        path = self._path(key)
        try:
            wav = audio.read_wav(path)
        except FileNotFoundError:
            return None
        except ValueError:
            log.warning("corrupt prompt cache file removed", extra={"path": str(path)})
            path.unlink(missing_ok=True)
            return None
        return wav.pcm if wav.sample_rate == self.sample_rate else None

    def _store(self, key: str, pcm: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        audio.write_wav(tmp, pcm, self.sample_rate)
        os.replace(tmp, path)

    async def _fill(self, key: str, text: str) -> bytes:
        try:
            pcm = await asyncio.to_thread(self._load, key)
            if pcm is not None:
                self.stats.disk_hits += 1
            else:
                self.stats.misses += 1
                pcm = await self.engine.synthesize(text)
                await asyncio.to_thread(self._store, key, pcm)
            self._remember(key, pcm)
            return pcm
        finally:
            self._inflight.pop(key, None)

    # --- public -----------------------------------------------------------------------------

    async def get(self, text: str) -> bytes:
        """PCM16 mono at `sample_rate` for `text`, rendering it at most once."""
        key = self.key(text)
        cached = self._memory.get(key)
        if cached is not None:
            self._memory.move_to_end(key)
            self.stats.memory_hits += 1
            return cached
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(self._fill(key, text), name=f"prompt-cache[{key[:8]}]")
            task.add_done_callback(_consume_exception)  # waiters may all have gone
            self._inflight[key] = task
        else:
            self.stats.shared += 1
        return await asyncio.shield(task)

    async def stream(self, text: str) -> AsyncGenerator[bytes, None]:
        """20 ms frames of `text`: from the cache when it is there (or being rendered), else
        straight from the engine's stream (first frame after its first clause), kept for next
        time when the stream is played to the end."""
        key = self.key(text)
        if key in self._memory or key in self._inflight or self._path(key).is_file():
            for frame in pcm_frames(await self.get(text), self.sample_rate):
                yield frame
            return
        self.stats.misses += 1
        played: list[bytes] = []
        async for frame in self.engine.synthesize_stream(text):
            played.append(frame)
            yield frame
        pcm = b"".join(played)  # padded to whole frames: a few ms of extra silence at most
        await asyncio.to_thread(self._store, key, pcm)
        self._remember(key, pcm)

    def contains(self, text: str) -> bool:
        """True when `text` is cached in memory or on disk (no render)."""
        key = self.key(text)
        return key in self._memory or self._path(key).is_file()

    async def prefetch(self, texts: Iterable[str]) -> int:
        """Render every text not cached yet (bounded concurrency); returns how many rendered."""
        before = self.stats.misses

        async def one(text: str) -> None:
            async with self._prefetch_slots:
                await self.get(text)

        async with asyncio.TaskGroup() as group:
            for text in dict.fromkeys(texts):  # unique, in order
                group.create_task(one(text))
        return self.stats.misses - before

    async def aclose(self) -> None:
        """Cancel renders still in flight."""
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
