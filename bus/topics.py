"""The bus's topics (relative to the prefix, ``bus.topic_prefix``) and their payloads.

The database is the system of record; the bus only tells. A node that misses a message loses
nothing: control messages make it re-read the database at once (it polls anyway), presence is
re-published every heartbeat, and call events are for live views. Payloads carry ids and
counts, never a phone number, a name or a transcript.

- ``control/campaign``: ``{"campaign", "action"}`` (its name; start, pause, resume, complete), sent
  by the operator's command after its database write; every node re-reads the campaigns.
- ``node/<id>/presence`` (retained): ``{"node", "online", "calls", "free_slots", "at"}``,
  each node every heartbeat; its last will (the broker, when the node dies) sets ``online``
  false. ``main.py nodes`` and the console read it.
- ``call/started``: ``{"node", "campaign_id", "lead_id", "attempt_no", "at"}``, once dialled.
- ``call/turn``: ``{"node", "campaign_id", "lead_id", "state", "speaker", "intent",
  "confidence"}``, each turn of a live call (no text): the console's live view.
- ``call/ended``: ``{"node", "campaign_id", "lead_id", "attempt_id", "disposition",
  "sip_code", "outcome"}``, after the attempt is stored.
- ``lead/qualified``: ``{"lead_id", "attempt_id", "grade"}``, after a qualified attempt.
"""

from __future__ import annotations

CONTROL_CAMPAIGN = "control/campaign"
CONTROL_ALL = "control/#"
PRESENCE_ALL = "node/+/presence"
CALL_STARTED = "call/started"
CALL_TURN = "call/turn"
CALL_ENDED = "call/ended"
LEAD_QUALIFIED = "lead/qualified"
CAMPAIGN_ACTIONS = ("start", "pause", "resume", "complete")


def presence_topic(node: str) -> str:
    """The retained presence topic of `node` (an id without '/', '+' or '#')."""
    if not node or any(c in node for c in "/+#"):
        raise ValueError(f"a node id may not be empty or hold '/', '+' or '#': {node!r}")
    return f"node/{node}/presence"
