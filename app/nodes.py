"""The command line's view of many nodes: `main.py nodes`, and telling them of a campaign change.

`main.py nodes` reads the nodes' retained presence on the broker (``bus.presence``) rather than
a table in the database: presence is ephemeral, changes every heartbeat (a table would take a
write per node every few seconds on the shared system of record), and the broker's last will
marks a node that died offline without anyone sweeping rows. The database keeps what must
survive (leads, leases, attempts, the outbox); the broker only what is true right now.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import Any, TextIO

from app.config import Config
from bus import make_bus
from bus.presence import live, read_presence
from bus.topics import CAMPAIGN_ACTIONS, CONTROL_CAMPAIGN

log = logging.getLogger(__name__)

CONNECT_WAIT_S = 5.0


async def _connected_bus(cfg: Config) -> Any:
    """The MQTT bus, started and connected; RuntimeError naming the problem otherwise."""
    if not cfg.bus.mqtt_url:
        raise RuntimeError("no MQTT broker configured (bus.mqtt_url or MQTT_URL)")
    bus = make_bus(cfg.bus.mqtt_url, prefix=cfg.bus.topic_prefix)
    await bus.start()
    if not getattr(bus, "connected", True):
        await bus.close()
        raise RuntimeError(f"the MQTT broker did not answer within {CONNECT_WAIT_S:.0f} s")
    return bus


async def live_nodes(cfg: Config, *, wait_s: float = 1.0) -> list[dict[str, Any]]:
    """The nodes online now: those whose presence says so and is at most three heartbeats
    old."""
    bus = await _connected_bus(cfg)
    try:
        presence = await read_presence(bus, wait_s=wait_s)
    finally:
        await bus.close()
    return live(presence, stale_s=3 * cfg.bus.heartbeat_s + 1)


def nodes_main(
    cfg: Config, *, as_json: bool, wait_s: float = 1.0, out: TextIO | None = None
) -> int:
    """Print the live nodes (a table, or one JSON list); 0, or 2 with one line on stderr."""
    out = out or sys.stdout
    try:
        nodes = asyncio.run(live_nodes(cfg, wait_s=wait_s))
    except RuntimeError as exc:
        print(f"nodes: {exc}", file=sys.stderr)
        return 2
    if as_json:
        print(json.dumps(nodes), file=out)
        return 0
    print(f"{'node':<48} {'calls':>5} {'free':>5}", file=out)
    for n in nodes:
        print(f"{n['node']:<48} {n.get('calls', 0):>5} {n.get('free_slots', 0):>5}", file=out)
    print(f"{len(nodes)} live node(s)", file=out)
    return 0


async def tell_nodes(cfg: Config, campaign: str, action: str) -> bool:
    """Publish a campaign's change (already in the database) on ``control/campaign``, so every
    node re-reads its campaigns at once. False if it could not be sent (the nodes still see
    the change at their next status poll)."""
    if action not in CAMPAIGN_ACTIONS or not cfg.bus.mqtt_url:
        return False
    try:
        bus = await _connected_bus(cfg)
    except RuntimeError as exc:
        log.warning("campaign change not published: %s", exc)
        return False
    try:
        await bus.publish(CONTROL_CAMPAIGN, {"campaign": campaign, "action": action})
    finally:
        await bus.close()  # waits (briefly) for the broker's acknowledgement
    return True
