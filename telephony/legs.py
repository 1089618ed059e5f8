"""The media worker's call edge: transfers (REFER, or a bridged second leg) and recording.

Runs on the worker's main thread only (pjsua2 callbacks and brain commands), like the rest of
`telephony.worker`.

- **REFER** (``Transfer(mode="refer"|"auto")``): ``Call.xfer``; the NOTIFYs' sipfrag codes come
  back through ``onCallTransferStatus``. A final 2xx means the agent answered. A REFER the far
  end refuses (a final answer before any NOTIFY: 4xx/5xx/6xx to the REFER itself) falls back
  to a bridge in "auto" mode; anything else is a transfer nobody answered.
- **Bridge** (``mode="bridge"``, or the fallback): a second outbound call (a *leg*, numbered 0:
  the brain never sees it) to the agent; once its media is up the callee's and the agent's audio
  are connected both ways in the conference bridge. The robot's own port stays connected
  (silent unless the brain sends audio) so the recording goes on. The leg ends the callee's
  call when the agent hangs up, and the other way round.
- **Being transferred** (the simulated callee's side): an inbound call answered with
  ``accept_refer`` accepts a REFER (pjsua calls the target on a new, detached leg); any other
  call refuses it with 405 (a callee could otherwise make the robot dial any number).
- **Recording**: ``Dial.record_dir`` names a folder; once media is up, one WAV recorder takes
  what the callee sends (``callee.wav``) and one what goes to the callee (``robot.wav``; after a
  bridged transfer, the agent's voice too). Files are created 0o600 before pjsua opens them.

Every transfer ends with exactly one ``ipc.TransferStatus`` to the brain.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pjsua2 as pj

from telephony import ipc

if TYPE_CHECKING:
    from telephony.pjglue import PjCall
    from telephony.worker import Worker

log = logging.getLogger("telephony.worker")

LEG_RING_TIMEOUT_S = 30.0  # an agent who does not answer within this is "not answered"
REFUSE_REFER = 405  # our answer to a REFER we do not take
RECORD_FILE_MODE = 0o600
TRACKS = ("callee.wav", "robot.wav")


@dataclass(slots=True)
class EdgeState:
    """Per-call transfer and recording state (``PjCall.edge``)."""

    record_dir: str | None = None
    recorders: list[Any] = field(default_factory=list)  # pj.AudioMediaRecorder, callee/robot
    accept_refer: bool = False  # inbound calls the brain answered with accept_refer
    mode: str | None = None  # the transfer under way: "refer", "bridge", "auto"
    target: str = ""
    refer_accepted: bool = False  # a NOTIFY (or 2xx) came back: the REFER itself was taken
    reported: bool = False  # the one TransferStatus has gone to the brain
    leg: PjCall | None = None  # our bridged leg to the agent
    parent: PjCall | None = None  # on a leg: the callee's call it is bridged with
    detached: bool = False  # a leg pjsua made for a REFER we accepted (nobody listens)


class Legs:
    """Transfers and recordings of one worker (see the module docstring)."""

    def __init__(self, worker: Worker) -> None:
        self._worker = worker
        self.legs: list[PjCall] = []  # live legs the brain does not know about

    # --- brain commands ---

    def transfer(self, call: PjCall, target: str, mode: str) -> None:
        edge = call.edge
        if edge.mode is not None:
            log.warning("a transfer is already under way", extra={"call": call.num})
            return
        edge.mode, edge.target = mode, target
        if mode == "bridge":
            self._bridge(call)
            return
        try:
            call.xfer(self._worker.trunk.with_transport(target), pj.CallOpParam(True))
        except pj.Error as err:
            log.warning("REFER not sent: %s", err.reason, extra={"call": call.num})
            self._refer_refused(call, 0)

    # --- REFER: the transferor (robot) side ---

    def on_transfer_status(self, call: PjCall, code: int, final: bool) -> bool:
        """A REFER's progress (sipfrag code); returns whether to keep the subscription."""
        edge = call.edge
        if edge.mode is None or edge.reported:
            return False
        if not final:
            edge.refer_accepted = True
            return True
        if 200 <= code < 300:
            self._report(call, "refer", code, True)
        elif not edge.refer_accepted:
            self._refer_refused(call, code)
        else:
            self._report(call, "refer", code, False)
        return False

    def _refer_refused(self, call: PjCall, code: int) -> None:
        if call.edge.mode == "auto":
            log.info("REFER refused; bridging", extra={"call": call.num, "sip_code": code})
            self._bridge(call)
        else:
            self._report(call, "refer", code, False)

    # --- REFER: the transferee (simulated callee) side ---

    def on_transfer_request(self, call: PjCall, prm: Any) -> None:
        if not call.edge.accept_refer:
            prm.statusCode = REFUSE_REFER
            return
        leg = self._new_leg(call)
        leg.edge.detached = True
        prm.newCall = leg

    # --- the bridged leg ---

    def _bridge(self, call: PjCall) -> None:
        leg = self._new_leg(call)
        leg.edge.parent = call
        leg.deadline = time.monotonic() + LEG_RING_TIMEOUT_S
        call.edge.leg = leg
        try:
            leg.makeCall(self._worker.trunk.with_transport(call.edge.target), pj.CallOpParam(True))
        except pj.Error as err:
            log.warning("agent leg not placed: %s", err.reason, extra={"call": call.num})
            self._drop(leg)
            self._report(call, "bridge", 0, False)

    def _new_leg(self, call: PjCall) -> PjCall:
        from telephony.pjglue import PjCall

        leg = PjCall(self._worker, call.account, 0, outbound=True, call_id=pj.PJSUA_INVALID_ID)
        self.legs.append(leg)
        return leg

    def is_leg(self, call: PjCall) -> bool:
        return call.edge.parent is not None or call.edge.detached

    def on_leg_state(self, leg: PjCall, state: int, code: int) -> None:
        parent = leg.edge.parent
        if state == pj.PJSIP_INV_STATE_CONFIRMED and not leg.answered:
            leg.answered, leg.deadline = True, None
            if parent is not None:
                self._report(parent, "bridge", code or 200, True)
        elif state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self._drop(leg)
            if parent is None:
                return
            parent.edge.leg = None
            if not leg.answered:
                self._report(parent, "bridge", leg.remote_final or code or 0, False)
            elif not parent.ended:  # the agent hung up: the bridged call is over
                parent.local_hangup = True
                self._hangup(parent)

    def on_leg_media(self, leg: PjCall) -> None:
        parent = leg.edge.parent
        if parent is None or parent.ended:
            return
        agent, callee = _audio_of(leg), _audio_of(parent)
        if agent is None or callee is None:
            return
        agent.startTransmit(callee)
        callee.startTransmit(agent)
        if len(parent.edge.recorders) == 2:
            agent.startTransmit(parent.edge.recorders[1])  # the agent joins the robot track

    def parent_gone(self, call: PjCall) -> list[str]:
        """The callee's call ended: hang up its bridged leg; close its recording (returns the
        paths of the files being closed)."""
        leg = call.edge.leg
        if leg is not None and not leg.ended:
            self._hangup(leg)
        return self.stop_recording(call)

    def check_deadlines(self, now: float) -> None:
        for leg in list(self.legs):
            if leg.deadline is not None and now >= leg.deadline and not leg.answered:
                leg.deadline = None
                self._hangup(leg)

    def _drop(self, leg: PjCall) -> None:
        leg.ended = True
        if leg in self.legs:
            self.legs.remove(leg)

    def _report(self, call: PjCall, mode: str, code: int, answered: bool) -> None:
        if call.edge.reported:
            return
        call.edge.reported = True
        self._worker.outbox.send(call.num, ipc.TransferStatus(mode, int(code), answered))

    @staticmethod
    def _hangup(call: PjCall) -> None:
        try:
            call.hangup(pj.CallOpParam())
        except pj.Error as err:
            log.warning("hangup failed: %s", err.reason, extra={"call": call.num})

    # --- recording ---

    def start_recording(self, call: PjCall, callee: Any, robot: Any) -> None:
        """Record `callee` (the call's audio) and `robot` (our port) into the call's folder."""
        edge = call.edge
        if edge.record_dir is None or edge.recorders:
            return
        recorders = []
        for name, source in zip(TRACKS, (callee, robot), strict=True):
            path = Path(edge.record_dir) / name
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, RECORD_FILE_MODE))
                os.chmod(path, RECORD_FILE_MODE)
                rec = pj.AudioMediaRecorder()
                rec.createRecorder(str(path))
            except (OSError, pj.Error) as err:
                reason = err.reason if isinstance(err, pj.Error) else type(err).__name__
                log.warning("recording not started: %s", reason, extra={"call": call.num})
                return
            source.startTransmit(rec)
            recorders.append(rec)
        edge.recorders = recorders

    @staticmethod
    def stop_recording(call: PjCall) -> list[str]:
        """Dropping the recorders closes their files (pjsua writes the WAV header on the
        bridge's next tick); returns their paths."""
        edge = call.edge
        if not edge.recorders or edge.record_dir is None:
            return []
        edge.recorders = []
        return [str(Path(edge.record_dir) / name) for name in TRACKS]


def _audio_of(call: PjCall) -> Any:
    """The call's active audio media, or None."""
    ci = call.getInfo()  # bind first: iterating a temporary's vector frees it mid-loop
    media = ci.media
    for idx in range(len(media)):
        mi = media[idx]
        if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
            return call.getAudioMedia(idx)
    return None
