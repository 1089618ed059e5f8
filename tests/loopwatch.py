"""Test helper: measure how long the event loop goes without running a 5 ms heartbeat."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator


@contextlib.asynccontextmanager
async def loop_gaps() -> AsyncIterator[list[float]]:
    """Yields the list of gaps (seconds) between heartbeats, filled while the block runs."""
    gaps: list[float] = []

    async def heartbeat() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    beat = asyncio.create_task(heartbeat(), name="test.heartbeat")
    try:
        yield gaps
    finally:
        beat.cancel()
        await asyncio.gather(beat, return_exceptions=True)
