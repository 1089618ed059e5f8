"""Prompt cache: render each (text, engine, voice, version) once, keep it on disk and in memory.

Fixed script lines are rendered once per campaign (``prefetch``); live lines are rendered on
first use. The key is (text, engine name, voice, engine version, sample rate): an engine's
``version`` changes whenever its output would (espeak-ng version and settings, recordings and
their backup engine, a coqui checkpoint). ``stats`` counts hits and misses (``hit_rate``);
``speak`` (the ``PromptSource`` a call plays through) gives a cached line in one piece, or
streams a new one from the engine while rendering it for the cache; ``stream`` is the same in
20 ms frames. Concurrent requests for the same key share one render, and a caller cancelled
by barge-in does not cancel the render the others are waiting for; a streamed line that every
listener left before its end is not rendered further and not cached. A personal line (a lead's
name or what the callee said: PII) is spoken with ``speak(text, cache=False)``: streamed from
the engine, kept neither in memory nor on disk. Files are written 0o600 in a 0o700 folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from core.audio import SAMPLE_RATE
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
    uncached: int = 0  # personal lines spoken past the cache (speak(cache=False))

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
            "uncached": self.uncached, "hit_rate": round(self.hit_rate, 4),
        }  # fmt: skip

    def reset(self) -> None:
        self.memory_hits = self.disk_hits = self.misses = self.shared = self.uncached = 0


def _consume_exception(task: asyncio.Task[bytes]) -> None:
    if not task.cancelled():
        task.exception()


class _Render:
    """One line being rendered, shared by every request for it.

    Chunks are kept as they arrive, so a late follower plays the line from its start. The
    render is stored only once somebody wants all of it (a follower reached its end, or a
    ``get`` awaits it); when the last follower leaves before that (barge-in), ``abandon`` is
    called and the rest of the line is never rendered.
    """

    task: asyncio.Task[bytes]  # set by PromptCache._start right after creation

    def __init__(self, abandon: Callable[[_Render], None]) -> None:
        self.chunks: list[bytes] = []
        self.rendered = False  # every chunk is in
        self.wanted = asyncio.Event()  # store it once rendered
        self.followers = 0
        self._abandon = abandon
        self._changed = asyncio.Event()

    def add(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        self._changed.set()

    def finish(self) -> None:
        """Every chunk is in."""
        self.rendered = True
        self._changed.set()

    def wake(self, _: object = None) -> None:
        """The task's done-callback: followers of a failed render see it at once."""
        self._changed.set()

    async def follow(self) -> AsyncGenerator[bytes, None]:
        """Every chunk from the first, as it arrives; then waits until the line is stored."""
        self.followers += 1
        try:
            index = 0
            while True:
                if index < len(self.chunks):
                    index += 1
                    yield self.chunks[index - 1]
                elif self.rendered:
                    break
                elif self.task.done():
                    if not self.task.cancelled():
                        self.task.result()  # the render failed: raise its error
                    raise RuntimeError("prompt render cancelled before the end of the line")
                else:
                    self._changed.clear()
                    await self._changed.wait()
            self.wanted.set()
            await asyncio.shield(self.task)
        finally:
            self.followers -= 1
            if not self.followers and not self.wanted.is_set():
                self._abandon(self)


class PromptCache:
    """Caches 8 kHz PCM16 renders of `engine` under `directory` as WAV files."""

    def __init__(
        self,
        engine: TtsEngine,
        directory: str | Path,
        *,
        sample_rate: int = SAMPLE_RATE,
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
        self._inflight: dict[str, _Render] = {}
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
        """Write the WAV owner-only (folder 0o700 when made here, file 0o600): the cache
        holds script lines only, but keeps no more than it must readable to others."""
        path = self._path(key)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(audio.to_wav(pcm, self.sample_rate))
        os.replace(tmp, path)

    async def _render(self, key: str, text: str, render: _Render, streaming: bool) -> bytes:
        try:
            pcm = await asyncio.to_thread(self._load, key)
            if pcm is not None:
                self.stats.disk_hits += 1
                render.add(pcm)
                render.finish()
            else:
                self.stats.misses += 1
                pcm = await self._synthesize(text, render, streaming)
                render.finish()
                await render.wanted.wait()  # a line nobody played to its end is not kept
                await asyncio.to_thread(self._store, key, pcm)
            self._remember(key, pcm)
            return pcm
        finally:
            if self._inflight.get(key) is render:
                del self._inflight[key]

    async def _synthesize(self, text: str, render: _Render, streaming: bool) -> bytes:
        if not streaming:
            pcm = await self.engine.synthesize(text)
            render.add(pcm)
            return pcm
        async with contextlib.aclosing(self.engine.synthesize_stream(text)) as frames:
            async for frame in frames:
                render.add(frame)
        return b"".join(render.chunks)  # whole frames: a few ms of extra silence at most

    def _start(self, key: str, text: str, *, streaming: bool) -> _Render:
        render = _Render(self._abandon)
        render.task = asyncio.create_task(
            self._render(key, text, render, streaming), name=f"prompt-cache[{key[:8]}]"
        )
        render.task.add_done_callback(_consume_exception)  # waiters may all have gone
        render.task.add_done_callback(render.wake)
        self._inflight[key] = render
        return render

    def _abandon(self, render: _Render) -> None:
        """The last listener left a line before its end: stop rendering it."""
        for key, current in list(self._inflight.items()):
            if current is render:
                del self._inflight[key]
        render.task.cancel()

    def _from_memory(self, key: str) -> bytes | None:
        cached = self._memory.get(key)
        if cached is not None:
            self._memory.move_to_end(key)
            self.stats.memory_hits += 1
        return cached

    def _join(self, key: str, text: str, *, streaming: bool) -> _Render:
        render = self._inflight.get(key)
        if render is None:
            return self._start(key, text, streaming=streaming)
        self.stats.shared += 1
        return render

    # --- public -----------------------------------------------------------------------------

    async def get(self, text: str) -> bytes:
        """PCM16 mono at `sample_rate` for `text`, rendering it at most once. A caller
        cancelled meanwhile does not cancel the render others wait for."""
        key = self.key(text)
        cached = self._from_memory(key)
        if cached is not None:
            return cached
        render = self._join(key, text, streaming=False)
        render.wanted.set()
        return await asyncio.shield(render.task)

    async def speak(self, text: str, *, cache: bool = True) -> AsyncGenerator[bytes, None]:
        """``PromptSource.speak``: a line in memory or on disk in one chunk; a new line as the
        engine streams it (first frames after its first clause), kept for next time when some
        caller plays it to the end. A caller that stops early leaves a render others still
        follow (or a ``get`` awaits) running; the last one to leave cancels it.

        ``cache=False``: a personal line (PII) streams from the engine and is kept nowhere, not
        even in memory; closing early cancels its render."""
        if not cache:
            self.stats.uncached += 1
            async with contextlib.aclosing(self.engine.synthesize_stream(text)) as frames:
                async for frame in frames:
                    yield frame
            return
        key = self.key(text)
        cached = self._from_memory(key)
        if cached is not None:
            yield cached
            return
        render = self._join(key, text, streaming=True)
        async with contextlib.aclosing(render.follow()) as chunks:
            async for chunk in chunks:
                yield chunk

    async def stream(self, text: str, *, cache: bool = True) -> AsyncGenerator[bytes, None]:
        """`speak` cut into 20 ms frames (the last one of each chunk padded with silence)."""
        async with contextlib.aclosing(self.speak(text, cache=cache)) as chunks:
            async for chunk in chunks:
                for frame in pcm_frames(chunk, self.sample_rate):
                    yield frame

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
        tasks = [render.task for render in self._inflight.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
