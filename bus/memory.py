"""In-process bus: the single-node default when no MQTT broker is configured."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

from .base import Message, topic_matches


class InProcessBus:
    def __init__(self, *, queue_size: int = 1000) -> None:
        self._subs: list[tuple[str, asyncio.Queue[Message]]] = []
        self._queue_size = queue_size

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._subs.clear()

    async def publish(self, topic: str, payload: dict[str, Any], *, retain: bool = False) -> None:
        """To the current subscribers (one process: nothing is retained for later ones)."""
        msg = Message(topic, dict(payload))
        for pattern, queue in list(self._subs):
            if topic_matches(pattern, topic):
                if queue.full():  # a slow subscriber loses its oldest message, not the call
                    queue.get_nowait()
                queue.put_nowait(msg)

    async def subscribe(self, pattern: str) -> AsyncGenerator[Message, None]:
        queue: asyncio.Queue[Message] = asyncio.Queue(self._queue_size)
        entry = (pattern, queue)
        self._subs.append(entry)
        try:
            while True:
                yield await queue.get()
        finally:
            self._subs.remove(entry)
