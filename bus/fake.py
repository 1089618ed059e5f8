"""A recording bus for unit tests: remembers everything published."""

from __future__ import annotations

from typing import Any

from .base import Message
from .memory import InProcessBus


class RecordingBus(InProcessBus):
    def __init__(self) -> None:
        super().__init__()
        self.published: list[Message] = []

    async def publish(self, topic: str, payload: dict[str, Any], *, retain: bool = False) -> None:
        self.published.append(Message(topic, dict(payload)))
        await super().publish(topic, payload, retain=retain)

    def topics(self) -> list[str]:
        return [m.topic for m in self.published]
