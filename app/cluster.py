"""What a node does for the others: renew its leases, say it is alive, hear control messages.

Three loops beside the node's dialing (``app.node``), each owned by the node's task list:

- `renew_leases`: every third of ``campaign.lease_s``, the leases of the calls in progress are
  extended (from a thread of their own: ``campaigns.leases``), so a call longer than the lease
  keeps its lead; a node that dies stops renewing and its leads are settled as lost attempts
  and dialled again after the lease.
- `heartbeat`: every ``bus.heartbeat_s`` the node's presence (calls in progress, free slots),
  retained on ``node/<id>/presence``; ``online: false`` when it stops, and its last will says
  the same when it dies (``bus.mqtt``).
- `follow_control`: a ``control/#`` message (a campaign started, paused, resumed) makes the
  node re-read its campaigns at once. The database stays the source of truth: a message
  missed while the broker was away costs only the status poll.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bus.topics import CONTROL_ALL, presence_topic

from .runtime import Runtime

log = logging.getLogger(__name__)


async def renew_leases(rt: Runtime, stop: asyncio.Event) -> None:
    """Renew the node's leases until `stop` (set only once every call is over and stored: a
    shutdown's grace period keeps its leads too), from the lease keeper's own thread
    (``campaigns.leases``): an event loop busy for longer than a lease never loses a lead."""
    await rt.leases.run(stop)


def presence(rt: Runtime, *, online: bool = True) -> dict[str, Any]:
    """The node's presence message: no lead, no number, counts only."""
    calls = rt.live_calls
    return {
        "node": rt.plan.node,
        "online": online,
        "calls": calls,
        "free_slots": max(0, rt.plan.max_concurrent - calls) if online else 0,
        "at": time.time(),
    }


async def heartbeat(rt: Runtime, stop: asyncio.Event) -> None:
    """Publish the node's presence (retained) every ``bus.heartbeat_s`` until `stop`, then
    once more as offline."""
    topic = presence_topic(rt.plan.node)
    try:
        while not stop.is_set():
            await rt.bus.publish(topic, presence(rt), retain=True)
            try:
                await asyncio.wait_for(stop.wait(), rt.cfg.bus.heartbeat_s)
            except TimeoutError:
                pass
    finally:
        await rt.bus.publish(topic, presence(rt, online=False), retain=True)


async def follow_control(rt: Runtime, recheck: Callable[[], Awaitable[Any]]) -> None:
    """Call `recheck` (re-read the campaigns) on every control message, until cancelled."""
    async for msg in rt.bus.subscribe(CONTROL_ALL):
        log.info("control message", extra={"topic": msg.topic, "payload": msg.payload})
        try:
            await recheck()
        except Exception as exc:  # the poll does it again shortly
            log.warning("re-reading campaigns on a control message failed (%s)", type(exc).__name__)
