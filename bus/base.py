"""Event bus interface: nodes publish call and lead events; the console and other nodes listen."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Message:
    topic: str  # relative to the bus prefix, e.g. "call/ended"
    payload: dict[str, Any]


class Bus(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(self, topic: str, payload: dict[str, Any], *, retain: bool = False) -> None:
        """Deliver at least once to current subscribers (MQTT QoS 1); `retain`: the broker
        also keeps it as the topic's last message for later subscribers (presence)."""
        ...

    def subscribe(self, pattern: str) -> AsyncGenerator[Message, None]:
        """Messages whose topic matches an MQTT-style pattern (`+` one level, `#` the rest)."""
        ...


def topic_matches(pattern: str, topic: str) -> bool:
    p_parts, t_parts = pattern.split("/"), topic.split("/")
    for i, part in enumerate(p_parts):
        if part == "#":
            return True
        if i >= len(t_parts) or (part != "+" and part != t_parts[i]):
            return False
    return len(p_parts) == len(t_parts)
