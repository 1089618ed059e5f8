"""Which nodes are alive: their retained presence messages (``node/<id>/presence``).

Each node publishes its presence, retained, every heartbeat; its last will, published by the
broker when the node's connection dies, says ``online: false``. A reader subscribing gets
every node's last presence at once from the broker, so a snapshot takes one round trip. A
presence older than `stale_s` counts as offline too (a node cut off before the broker noticed).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from .base import Bus
from .topics import PRESENCE_ALL


async def read_presence(bus: Bus, *, wait_s: float = 1.0) -> dict[str, dict[str, Any]]:
    """Every node's last presence the broker holds, by node id (collected for `wait_s`)."""
    seen: dict[str, dict[str, Any]] = {}
    messages = bus.subscribe(PRESENCE_ALL)

    async def collect() -> None:
        async for msg in messages:
            seen[msg.topic.split("/")[1]] = msg.payload

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(collect(), wait_s)
    await messages.aclose()
    return seen


def live(presence: dict[str, dict[str, Any]], *, stale_s: float) -> list[dict[str, Any]]:
    """The nodes that say they are online and spoke within `stale_s`, sorted by id."""
    now = time.time()
    return [
        {"node": node, **p}
        for node, p in sorted(presence.items())
        if p.get("online") and now - float(p.get("at", 0)) <= stale_s
    ]
