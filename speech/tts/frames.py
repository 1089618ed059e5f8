"""Framing and clause-pipelined streaming shared by the TTS engines.

``stream_clauses`` renders a line clause by clause (split after sentence and comma
punctuation) and yields the frames of clause i while clause i+1 renders, so the first frame
arrives after the first clause instead of after the whole line.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from typing import Final

from core.audio import FRAME_MS, SAMPLE_RATE
from speech.audio import frame_bytes_for

_CLAUSE_END: Final = re.compile(r"(?<=[，。！？；…,.!?;])")
_MIN_CLAUSE_CHARS: Final = 4  # shorter pieces ("好的，") are merged into the next clause


def pcm_frames(
    pcm: bytes, sample_rate: int = SAMPLE_RATE, frame_ms: int = FRAME_MS
) -> Iterator[bytes]:
    """Cut PCM16 into frames of `frame_ms`; the last one is padded with silence."""
    size = frame_bytes_for(sample_rate, frame_ms)
    for start in range(0, len(pcm), size):
        frame = pcm[start : start + size]
        yield frame if len(frame) == size else frame + b"\x00" * (size - len(frame))


def split_clauses(text: str) -> list[str]:
    """Split after sentence/comma punctuation; tiny pieces are merged into the next one."""
    clauses: list[str] = []
    pending = ""
    for piece in _CLAUSE_END.split(text):
        pending += piece
        if sum(c.isalnum() for c in pending) >= _MIN_CLAUSE_CHARS:
            clauses.append(pending)
            pending = ""
    if any(c.isalnum() for c in pending):
        clauses.append(pending)
    elif clauses and pending.strip():
        clauses[-1] += pending  # trailing punctuation stays with the last clause
    return clauses


def _consume(task: asyncio.Future[bytes]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: an abandoned look-ahead's failure is not an error


async def stream_clauses(
    render: Callable[[str], Awaitable[bytes]],
    text: str,
    *,
    sample_rate: int = SAMPLE_RATE,
    frame_ms: int = FRAME_MS,
) -> AsyncGenerator[bytes, None]:
    """Render `text` clause by clause with one clause of look-ahead, yielding frames.

    Frames of one clause are padded to a whole frame before the next clause starts (at most
    one frame of extra silence per clause). Closing the generator cancels the look-ahead.
    """
    clauses = split_clauses(text)
    if not clauses:
        return
    tasks: list[asyncio.Future[bytes]] = []

    def start(index: int) -> None:
        if index < len(clauses):
            task = asyncio.ensure_future(render(clauses[index]))
            task.add_done_callback(_consume)
            tasks.append(task)

    try:
        start(0)
        for index in range(len(clauses)):
            start(index + 1)
            pcm = await tasks[index]
            for frame in pcm_frames(pcm, sample_rate, frame_ms):
                yield frame
    finally:
        for task in tasks:
            task.cancel()  # no-op for finished ones; a render in flight is abandoned


async def stream_whole(
    render: Callable[[str], Awaitable[bytes]],
    text: str,
    *,
    sample_rate: int = SAMPLE_RATE,
    frame_ms: int = FRAME_MS,
) -> AsyncGenerator[bytes, None]:
    """Render the whole line, then yield its frames (for engines that cannot stream)."""
    for frame in pcm_frames(await render(text), sample_rate, frame_ms):
        yield frame
