"""The call's edge between the line and the machine: DTMF keys in, keys out, transfers.

`CallEdge` turns the line's `Dtmf` and `TransferEnded` events into machine events
(``UserPressed``, ``TransferDone``) and carries out the machine's ``SendDigits`` and
``Transfer`` actions on the `CallHandle`. A transfer target is a name in the script
(``{transfer: agent}``); the deployment maps names to SIP URIs (``callflow.transfer_to`` in
config.yaml), so a script never holds a phone number. A name with no URI is a transfer nobody
answered: the machine goes on to the script's ``transfer.failed`` state.

Modes (``callflow.transfer_mode``): "refer" (blind transfer by SIP REFER: the callee's side
calls the agent and the robot leaves once the NOTIFY says 200), "bridge" (the media worker
calls the agent and bridges the two legs; the robot's line stays up, silent, until either
side hangs up), "auto" (REFER, and a bridge when the far end refuses REFER).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from core.vocab import TransferMode
from telephony.base import CallHandle, Dtmf, TransferEnded

from .machine import Event, SendDigits, Transfer, TransferDone, UserPressed

log = logging.getLogger(__name__)

MODES = ("auto", "refer", "bridge")


@dataclass(frozen=True, slots=True)
class TransferPolicy:
    """Where transfer targets lead (name -> SIP URI) and how to transfer."""

    targets: Mapping[str, str] = field(default_factory=dict)
    mode: str = "auto"
    bridge_max_s: float = 3600.0  # how long a bridged call may last once the robot left

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"transfer mode {self.mode!r} is not one of {', '.join(MODES)}")


class CallEdge:
    """One call's DTMF and transfer plumbing (see the module docstring)."""

    def __init__(self, call: CallHandle, policy: TransferPolicy | None = None) -> None:
        self._call = call
        self._policy = policy or TransferPolicy()
        self.result: TransferEnded | None = None  # how the call's transfer ended, if any

    @property
    def keep_line(self) -> bool:
        """The robot's leg carries a bridged call: wait for it to end, do not hang up."""
        r = self.result
        return r is not None and r.answered and r.mode == TransferMode.BRIDGE

    @property
    def bridge_max_s(self) -> float:
        return self._policy.bridge_max_s

    def event(self, ev: Dtmf | TransferEnded) -> Event:
        """The machine event for a line event."""
        if isinstance(ev, Dtmf):
            return UserPressed(ev.digit)
        self.result = ev
        return TransferDone(ev.answered, keep_line=self.keep_line)

    def act(self, action: SendDigits | Transfer) -> Event | None:
        """Carry out an action; a machine event to feed back at once, if any."""
        if isinstance(action, SendDigits):
            self._call.send_dtmf(action.digits)
            return None
        uri = self._policy.targets.get(action.target)
        if not uri:
            log.warning(
                "no URI for the transfer target; the transfer fails",
                extra={"call": self._call.call_id, "target": action.target},
            )
            return self.event(TransferEnded(self._policy.mode, 0, False))
        self._call.transfer(uri, self._policy.mode)
        return None


def parse_targets(spec: str) -> dict[str, str]:
    """``"agent=sip:8001@10.0.0.1,sales=sip:8002@10.0.0.1"`` -> {name: URI}; a bad entry is a
    ValueError naming it ("" means no targets)."""
    out: dict[str, str] = {}
    for entry in (e.strip() for e in spec.split(",")):
        if not entry:
            continue
        name, sep, uri = (x.strip() for x in entry.partition("="))
        if not sep or not name or not uri.startswith(("sip:", "sips:", "tel:")):
            raise ValueError(f"transfer target {entry!r} is not name=sip:URI")
        out[name] = uri
    return out
