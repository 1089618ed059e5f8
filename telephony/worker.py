"""Media worker process: one pjsua2 endpoint carrying up to 4 calls (the PyPI wheel's cap).

Run as ``python -m telephony.worker --sip-host 127.0.0.1 --sip-port 0 ...``; stdin/stdout carry
`telephony.ipc` frames to and from the brain, logs go to stderr. The worker exits cleanly
(calls hung up, pjsua2 destroyed) when stdin closes or on SIGTERM.

Threads, and what each may touch (pjlib aborts on calls from unregistered threads):
- main: the only thread that calls pjsua2's API (``libHandleEvents``, commands, callbacks);
- ``ipc-reader``: parses stdin; feeds `Playout` buffers (pure Python) and queues commands;
- ``ipc-writer``: writes stdout; never touches pjsua2;
- pjmedia clock thread (created by pjlib, so registered): `TapPort` frame callbacks, which
  only touch the frame they are given and `Playout`.
Automatic garbage collection is disabled and run from the main loop instead, so no pjsua2
object is ever destroyed on the reader or writer thread.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import logging
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pjsua2 as pj

from core.audio import FRAME_MS, SAMPLE_RATE, SAMPLE_WIDTH, pcm_ms
from core.vocab import Disposition
from telephony import ipc
from telephony.base import CallState
from telephony.legs import Legs
from telephony.media import Outbox, Playout, bare_uri, classify_end, request_user
from telephony.pjglue import PjAccount, PjCall, PortPool, fast_vectors_work
from telephony.trunk import TrunkSpec, TrunkSpecError, codec_priorities

log = logging.getLogger("telephony.worker")

PUMP_MS = 20  # main-loop poll while calls are up: command latency vs idle wake-ups
PUMP_MS_IDLE = 50  # with no call up (a dial then waits <= 50 ms to start)
GC_EVERY_S = 5.0
PORT_GRACE_S = 0.2  # a finished call's port rests this long before it serves another call
PJ_ETOOMANY = 70010  # pjsua's status when every call slot is taken
SLOT_WAIT_S = 2.0  # a dial waits this long for pjsua to free the slot of a call just ended
RECORDING_CLOSE_S = 1.0  # longest wait for a call's WAV files to be closed before its end goes out
SHUTDOWN_WAIT_S = 2.0
BIND_TRIES = 5  # ports tried for UDP+TCP when any free one will do
_CALLER_ID_CHARS = frozenset("0123456789+*#._-abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    sip_host: str = "127.0.0.1"
    sip_port: int = 0  # 0: any free port, reported in `ipc.Ready`
    rtp_port: int = 0  # 0: any free ports
    rtp_port_range: int = 0
    max_calls: int = 4
    listen: bool = False
    pj_log_level: int = 1


def parse_args(argv: list[str] | None = None) -> tuple[WorkerConfig, str]:
    p = argparse.ArgumentParser(prog="python -m telephony.worker")
    p.add_argument("--sip-host", default="127.0.0.1")
    p.add_argument("--sip-port", type=int, default=0)
    p.add_argument("--rtp-port", type=int, default=0)
    p.add_argument("--rtp-port-range", type=int, default=0)
    p.add_argument("--max-calls", type=int, default=4, choices=range(1, 5))
    p.add_argument("--listen", action="store_true")
    p.add_argument("--pj-log-level", type=int, default=1)
    p.add_argument("--log-level", default=os.environ.get("TELEPHONY_WORKER_LOG", "WARNING"))
    a = p.parse_args(argv)
    cfg = WorkerConfig(
        sip_host=a.sip_host,
        sip_port=a.sip_port,
        rtp_port=a.rtp_port,
        rtp_port_range=a.rtp_port_range,
        max_calls=a.max_calls,
        listen=a.listen,
        pj_log_level=a.pj_log_level,
    )
    return cfg, a.log_level


class Worker:
    def __init__(self, cfg: WorkerConfig, outbox: Outbox, trunk: TrunkSpec | None = None) -> None:
        self.cfg = cfg
        self.outbox = outbox
        self.trunk = trunk or TrunkSpec()
        self.commands: queue.SimpleQueue[ipc.Control] = queue.SimpleQueue()
        self.playouts: dict[int, Playout] = {}  # read by the reader thread
        self.calls: dict[int, PjCall] = {}
        self.accounts: dict[tuple[str, str, str], PjAccount] = {}
        self.fast = fast_vectors_work()
        self.ports = PortPool(outbox, self.fast, _port_format(), PORT_GRACE_S)
        self.pending_ends: list[_PendingEnd] = []  # ends held until their recordings close
        self.waiting_dials: list[tuple[float, int, ipc.Dial]] = []  # (give up at, num, dial)
        self.stopping = False
        self.next_inbound = ipc.INBOUND_BASE
        self.ep = pj.Endpoint()
        self.sip_port = 0
        self.transport_id = -1  # the trunk's transport (UDP or TCP)
        self.transports: dict[str, int] = {}
        self.from_domain = ""
        self.default_acc: PjAccount | None = None
        self.legs = Legs(self)  # transfers and recordings (telephony.legs)

    # --- lifecycle ---

    def start(self) -> None:
        cfg = self.cfg
        ep = self.ep
        with _quiet_stdout():  # pjlib logs its start-up at a verbose level before libInit
            ep.libCreate()
        ep.libInit(_endpoint_config(cfg))
        self._create_transports()
        ep.audDevManager().setNullDev()
        ep.libStart()
        ids = [codec.codecId for codec in ep.codecEnum2()]
        for codec_id, prio in codec_priorities(ids, self.trunk.codecs).items():
            ep.codecSetPriority(codec_id, prio)
        self.default_acc = self._make_trunk_account()
        if not self.fast:
            log.warning("ctypes vector access unavailable; using slow bytes(frame.buf)")

    def _create_transports(self) -> None:
        """UDP and TCP on the same port (any free one when ``sip_port`` is 0); the trunk's
        transport carries the trunk account's requests. A free UDP port's number can be taken
        for TCP by another process: then both are closed and another port is tried."""
        tries = 1 if self.cfg.sip_port else BIND_TRIES
        for attempt in range(tries):
            try:
                self._bind_transports()
                break
            except pj.Error:
                if attempt == tries - 1:
                    raise
                for tid in self.transports.values():
                    self.ep.transportClose(tid)
                self.transports.clear()
                self.sip_port = 0
        self.transport_id = self.transports[self.trunk.transport]

    def _bind_transports(self) -> None:
        cfg = self.cfg
        for kind, pj_type in (("udp", pj.PJSIP_TRANSPORT_UDP), ("tcp", pj.PJSIP_TRANSPORT_TCP)):
            tcfg = pj.TransportConfig()
            tcfg.boundAddress = cfg.sip_host
            tcfg.port = self.sip_port or cfg.sip_port
            self.transports[kind] = self.ep.transportCreate(pj_type, tcfg)
            if not self.sip_port:
                local = self.ep.transportGetInfo(self.transports[kind]).localName
                self.sip_port = int(local.rsplit(":", 1)[1])

    def _make_trunk_account(self) -> PjAccount:
        """The default account: the trunk's user, credentials, outbound proxy, transport and,
        when the trunk registers, its registration. Inbound calls arrive on it too."""
        trunk = self.trunk
        self.from_domain = trunk.domain or f"{self.cfg.sip_host}:{self.sip_port}"
        acfg = self._account_config(trunk.username or "robot", self.from_domain)
        if trunk.username:
            cred = pj.AuthCredInfo("digest", trunk.realm, trunk.username, 0, trunk.password)
            acfg.sipConfig.authCreds.append(cred)
        if trunk.outbound_proxy:
            acfg.sipConfig.proxies.append(trunk.with_transport(_loose(trunk.outbound_proxy)))
        if trunk.register:
            acfg.regConfig.registrarUri = trunk.with_transport(trunk.registrar_uri)
            acfg.regConfig.timeoutSec = trunk.register_expiry_s
            acfg.regConfig.registerOnAdd = True
        acc = PjAccount(self)
        acc.create(acfg, True)
        return acc

    def _account_config(self, user: str, domain: str) -> pj.AccountConfig:
        cfg = self.cfg
        acfg = pj.AccountConfig()
        acfg.idUri = f"sip:{user}@{domain}"
        acfg.sipConfig.transportId = self.transport_id
        mt = acfg.mediaConfig.transportConfig
        mt.boundAddress = cfg.sip_host
        mt.port = cfg.rtp_port
        mt.portRange = cfg.rtp_port_range
        return acfg

    def _make_account(self, user: str, password: str, domain: str) -> PjAccount:
        """An extra account for a dial that brings its own credentials."""
        acfg = self._account_config(user, domain)
        acfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", user, 0, password))
        if self.trunk.outbound_proxy:
            acfg.sipConfig.proxies.append(
                self.trunk.with_transport(_loose(self.trunk.outbound_proxy))
            )
        acc = PjAccount(self)
        acc.create(acfg, False)
        return acc

    def _account_for(self, user: str | None, password: str | None, uri: str) -> PjAccount:
        """The trunk account, unless the dial brings other credentials (an account each)."""
        trunk = self.trunk
        if not user or (user == trunk.username and (password or "") == trunk.password):
            assert self.default_acc is not None
            return self.default_acc
        domain = _host_of(uri) or self.cfg.sip_host
        key = (user, password or "", domain)
        acc = self.accounts.get(key)
        if acc is None:
            acc = self._make_account(user, password or "", domain)
            self.accounts[key] = acc
        return acc

    def run(self) -> None:
        ready = ipc.Ready(self.sip_port, self.cfg.max_calls, os.getpid(), self.fast)
        self.outbox.send(0, ready)
        next_gc = time.monotonic() + GC_EVERY_S
        while not self.stopping:
            self.ep.libHandleEvents(PUMP_MS if self.calls else PUMP_MS_IDLE)
            now = time.monotonic()
            self._send_pending_ends(now)
            self._retry_dials()
            self._drain_commands()
            self._check_deadlines(now)
            if now >= next_gc:
                gc.collect()
                next_gc = now + GC_EVERY_S

    def shutdown(self) -> bool:
        """Hang up, drop every pjsua2 reference, collect, then destroy the library.

        Returns False when something still held a pjsua2 object, so the library was left
        alone and the process must end with os._exit().

        Loops over pjsua2 objects live in helpers: a loop variable left in this frame would
        keep its object alive into libDestroy(), and its destructor would then abort.
        """
        for _, num, _ in self.waiting_dials:
            self._fail_dial(num, "worker stopping")
        self.waiting_dials.clear()
        self._hangup_all()
        end = time.monotonic() + SHUTDOWN_WAIT_S
        while (self.pending_ends or not self.ports.settled(time.monotonic())) and (
            time.monotonic() < end
        ):  # recordings close; the bridge forgets the ports of calls just ended
            self.ep.libHandleEvents(PUMP_MS)
            self._send_pending_ends(time.monotonic())
        self._send_pending_ends(float("inf"))
        self.calls.clear()
        self.legs.legs.clear()
        self.playouts.clear()
        self._shutdown_accounts()
        for _ in range(50):  # a port can still be inside a clock-thread callback
            gc.collect()
            live = self._live_objects()
            if not live:
                break
            self.ep.libHandleEvents(PUMP_MS)
        else:
            # Destroying them after libDestroy() would abort; skip the teardown instead.
            log.error("pjsua2 objects still referenced at shutdown: %s", live)
            return False
        # Without NO_RX_MSG, libDestroy() idles a full second waiting for stray responses.
        self.ep.libDestroy(pj.PJSUA_DESTROY_NO_RX_MSG)
        self.ports.forget()
        return True

    def _hangup_all(self) -> None:
        if not self.calls:
            return
        for call in self.calls.values():
            call.local_hangup = True
        self.ep.hangupAllCalls()
        end = time.monotonic() + SHUTDOWN_WAIT_S
        while self.calls and time.monotonic() < end:
            self.ep.libHandleEvents(PUMP_MS)
        self.ep.libHandleEvents(50)  # usually enough for the 200 OK to our BYEs
        if self.calls:
            log.warning("calls still up at shutdown", extra={"calls": len(self.calls)})

    def _shutdown_accounts(self) -> None:
        for acc in [*self.accounts.values(), self.default_acc]:
            if acc is not None:
                acc.shutdown()
        self.accounts.clear()
        self.default_acc = None

    @staticmethod
    def _live_objects() -> list[str]:
        kinds = (PjCall, PjAccount)  # the pool's ports are dropped after libDestroy()
        return [type(o).__name__ for o in gc.get_objects() if isinstance(o, kinds)]

    # --- brain commands (main thread) ---

    def _drain_commands(self) -> None:
        while True:
            try:
                num, msg = self.commands.get_nowait()
            except queue.Empty:
                return
            try:
                self._handle(num, msg)
            except pj.Error as err:  # e.g. hanging up a call that is already going away
                log.warning("command failed: %s", err.reason, extra={"op": msg.KIND})
            except Exception:
                log.exception("command failed", extra={"op": msg.KIND, "call": num})

    def _handle(self, num: int, msg: ipc.Message) -> None:
        match msg:
            case ipc.Shutdown():
                self.stopping = True
            case ipc.Ping(seq):  # answered from the main loop: a hung pjsua2 loop stops pongs
                self.outbox.send(0, ipc.Pong(seq))
            case ipc.Dial():
                self._dial(num, msg)
            case ipc.Hangup() if any(w[1] == num for w in self.waiting_dials):
                # hung up while waiting for a call slot: the call never starts
                self.waiting_dials = [w for w in self.waiting_dials if w[1] != num]
                self._fail_dial(num, "hung up before it was dialled")
            case _:
                call = self.calls.get(num)
                if call is not None:  # else already ended: the brain has or will get `Ended`
                    self._call_command(call, msg)

    def _call_command(self, call: PjCall, msg: ipc.Message) -> None:
        match msg:
            case ipc.Hangup():
                call.local_hangup = True
                call.hangup(pj.CallOpParam())
            case ipc.Answer(accept_refer):
                call.edge.accept_refer = accept_refer
                call.answer(_status(200))
            case ipc.EarlyMedia():
                call.answer(_status(183))  # pjsip puts its SDP answer in a 183
                if (playout := self.playouts.get(call.num)) is not None:
                    playout.live = True  # what the callee queues now is the early media
            case ipc.Reject(code):
                call.local_hangup = True
                call.hangup(_status(code))
            case ipc.SendDtmf(digits):
                call.dialDtmf(digits)  # RFC 4733 telephone events (pjsua's default method)
            case ipc.Transfer(target, mode):
                self.legs.transfer(call, target, mode)
            case _:
                log.warning("unexpected message from the brain", extra={"op": msg.KIND})

    def _retry_dials(self) -> None:
        waiting, self.waiting_dials = self.waiting_dials, []
        for give_up, num, dial in waiting:
            self._dial(num, dial, give_up)

    def _dial(self, num: int, dial: ipc.Dial, give_up: float | None = None) -> None:
        if len(self.calls) >= self.cfg.max_calls:
            self._fail_dial(num, "no free call slot in worker")
            return
        uri = self.trunk.with_transport(dial.uri)
        if dial.from_user is not None and not _valid_caller_id(dial.from_user):
            self._fail_dial(num, "caller ID is not a SIP user part")
            return
        try:
            acc = self._account_for(dial.username, dial.password, uri)
        except pj.Error as err:
            self._fail_dial(num, err.reason)
            return
        call = PjCall(self, acc, num, outbound=True, call_id=pj.PJSUA_INVALID_ID)
        call.deadline = time.monotonic() + dial.ring_timeout_s
        call.edge.record_dir = dial.record_dir
        prm = pj.CallOpParam(True)
        if dial.from_user is not None:
            domain = self.from_domain if acc is self.default_acc else _host_of(uri)
            prm.txOption.localUri = self._from_uri(dial.from_user, domain)
        for name, value in dial.headers.items():
            hdr = pj.SipHeader()
            hdr.hName = name
            hdr.hValue = value
            prm.txOption.headers.append(hdr)
        self.calls[num] = call
        try:
            call.makeCall(uri, prm)
        except pj.Error as err:
            now = time.monotonic()
            if err.status == PJ_ETOOMANY and not call.ended and now < (give_up or now + 1):
                # pjsua frees a call's slot a little after its DISCONNECTED (the brain has
                # already been told, so it dialled again): wait for it, do not fail the lead
                self.calls.pop(num, None)
                self.waiting_dials.append((give_up or now + SLOT_WAIT_S, num, dial))
                return
            # pjsua may already have reported DISCONNECTED through onCallState.
            if not call.ended:
                self._finish(call, None, err.reason)
                self._fail_dial(num, err.reason)
            # Drop the object now: its slot id cannot have been reused yet.
            self.calls.pop(num, None)

    def _from_uri(self, user: str, domain: str) -> str:
        """Our From for one call: the caller ID at the trunk's domain, with its display."""
        display = self.trunk.display.replace("\\", "").replace('"', "")
        uri = f"sip:{user}@{domain}"
        return f'"{display}" <{uri}>' if display else f"<{uri}>"

    def _fail_dial(self, num: int, reason: str) -> None:
        self.playouts.pop(num, None)
        self._report_end(num, None, reason, Disposition.FAILED, None)

    def _check_deadlines(self, now: float) -> None:
        self.legs.check_deadlines(now)
        for call in list(self.calls.values()):
            if call.deadline is not None and now >= call.deadline and not call.answered:
                call.deadline = None
                call.ring_timeout = True
                call.local_hangup = True
                try:
                    call.hangup(pj.CallOpParam())
                except pj.Error:
                    log.warning("hangup after ring timeout failed", extra={"call": call.num})

    # --- pjsua2 events (main thread) ---

    def on_reg_state(self, acc: PjAccount, code: int, reason: str) -> None:
        active = bool(acc.getInfo().regIsActive)
        self.outbox.send(0, ipc.Registration(int(code), str(reason), active))

    def on_incoming(self, acc: PjAccount, prm: Any) -> None:
        if not self.cfg.listen:
            call = PjCall(self, acc, 0, outbound=False, call_id=prm.callId)
            reject = pj.CallOpParam()
            reject.statusCode = 403
            call.ended = True
            call.hangup(reject)
            return
        num = self.next_inbound
        self.next_inbound += 1
        call = PjCall(self, acc, num, outbound=False, call_id=prm.callId)
        ci = call.getInfo()
        self.calls[num] = call
        self.playouts[num] = Playout()
        incoming = ipc.Incoming(request_user(prm.rdata.wholeMsg), bare_uri(ci.remoteUri))
        self.outbox.send(num, incoming)
        call.answer(_status(180))

    def on_call_state(self, call: PjCall, state: int, code: int, reason: str) -> None:
        if call.ended:
            return
        if self.legs.is_leg(call):
            self.legs.on_leg_state(call, state, code)
            return
        if state == pj.PJSIP_INV_STATE_EARLY and call.outbound and not call.ringing_reported:
            call.ringing_reported = True
            self.outbox.send(call.num, ipc.CallProgress(CallState.RINGING, code, reason))
        elif state == pj.PJSIP_INV_STATE_CONFIRMED and not call.answered:
            call.answered = True
            call.deadline = None
            playout = self.playouts.get(call.num)
            if playout is not None:
                playout.live = True
            self.outbox.send(call.num, ipc.CallProgress(CallState.ANSWERED, code, reason))
        elif state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self._on_disconnected(call, code, reason)

    def _on_disconnected(self, call: PjCall, code: int, reason: str) -> None:
        disposition, hangup_by = classify_end(
            outbound=call.outbound,
            answered=call.answered,
            local_hangup=call.local_hangup,
            ring_timeout=call.ring_timeout,
            got_response=call.got_response,
            remote_final=call.remote_final,
            code=code,
            challenged=call.challenged,
        )
        if call.ring_timeout:
            reason = "ring timeout"
        sip_code = call.remote_final if call.remote_final and not call.answered else code
        recordings = self.legs.parent_gone(call)
        self._report_end(call.num, sip_code or None, reason, disposition, hangup_by, recordings)
        self._finish(call, code, reason)
        # Deleting the call inside its own DISCONNECTED callback is allowed by pjsua2 and
        # is the only moment its slot id cannot yet have been reused by a new call.
        self.calls.pop(call.num, None)

    def on_transfer_request(self, call: PjCall, prm: Any) -> None:
        self.legs.on_transfer_request(call, prm)

    def on_transfer_status(self, call: PjCall, code: int, final: bool) -> bool:
        return self.legs.on_transfer_status(call, code, final)

    def on_media_state(self, call: PjCall) -> None:
        if self.legs.is_leg(call):
            self.legs.on_leg_media(call)
            return
        ci = call.getInfo()  # bind first: iterating a temporary's vector frees it mid-loop
        media = ci.media
        for idx in range(len(media)):
            mi = media[idx]
            if mi.type != pj.PJMEDIA_TYPE_AUDIO or mi.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            aud = call.getAudioMedia(idx)
            if call.port is None:
                playout = self.playouts.get(call.num) or Playout()
                call.port = self.ports.take(call.num, playout, time.monotonic())
            aud.startTransmit(call.port)
            call.port.startTransmit(aud)
            self.legs.start_recording(call, aud, call.port)
            return

    # --- helpers ---

    def _finish(self, call: PjCall, code: int | None, reason: str) -> None:
        call.ended = True
        self.playouts.pop(call.num, None)
        if call.port is not None:
            self.ports.give_back(call.port, time.monotonic())
            call.port = None
        log.info("call ended", extra={"call": call.num, "sip_code": code, "reason": reason})

    def _report_end(
        self,
        num: int,
        code: int | None,
        reason: str,
        disposition: Disposition,
        by: str | None,
        recordings: list[str] | None = None,
    ) -> None:
        """Send the call's `Ended`; with `recordings` just closed, once their WAV headers are
        final (pjsua finishes a file on the bridge's next tick): whoever reads the outcome
        may open the files at once."""
        end = ipc.Ended(code, reason, disposition, by)
        if recordings:
            deadline = time.monotonic() + RECORDING_CLOSE_S
            self.pending_ends.append(_PendingEnd(num, end, recordings, deadline))
        else:
            self.outbox.send(num, end)

    def _send_pending_ends(self, now: float) -> None:
        if not self.pending_ends:
            return
        held = []
        for pending in self.pending_ends:
            if all(map(wav_closed, pending.recordings)):
                self.outbox.send(pending.num, pending.end)
            elif now >= pending.deadline:
                log.warning("recording not closed in time", extra={"call": pending.num})
                self.outbox.send(pending.num, pending.end)
            else:
                held.append(pending)
        self.pending_ends = held


@dataclass(slots=True)
class _PendingEnd:
    num: int
    end: ipc.Ended
    recordings: list[str]
    deadline: float


def wav_closed(path: str) -> bool:
    """True once a recorder has finished `path`: the RIFF size in its header counts the
    whole file (pjmedia writes 0 there until the recorder is destroyed). A missing file
    counts as closed: there is nothing to wait for."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            size = os.fstat(f.fileno()).st_size
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return len(head) == 8 and head[:4] == b"RIFF" and int.from_bytes(head[4:], "little") == size - 8


def _port_format() -> Any:
    """The audio format of every `TapPort`: 8 kHz mono 16-bit, 20 ms frames."""
    fmt = pj.MediaFormatAudio()
    fmt.type = pj.PJMEDIA_TYPE_AUDIO
    fmt.clockRate = SAMPLE_RATE
    fmt.channelCount = 1
    fmt.bitsPerSample = SAMPLE_WIDTH * 8
    fmt.frameTimeUsec = FRAME_MS * 1000
    return fmt


def _valid_caller_id(user: str) -> bool:
    return 0 < len(user) <= 64 and set(user) <= _CALLER_ID_CHARS


def _host_of(uri: str) -> str:
    """'sip:1380@10.0.0.1:5060;transport=tcp' -> '10.0.0.1:5060' ('' without a user part)."""
    return uri.split("@", 1)[1].split(";", 1)[0] if "@" in uri else ""


def _loose(uri: str) -> str:
    """An outbound proxy URI with ``;lr`` (loose routing: the request URI stays the callee)."""
    return uri if ";lr" in uri.lower() else f"{uri};lr"


def _status(code: int) -> pj.CallOpParam:
    prm = pj.CallOpParam()
    prm.statusCode = code
    return prm


def _endpoint_config(cfg: WorkerConfig) -> pj.EpConfig:
    """pjsua2 settings: no pjsua threads of its own, 8 kHz mono 20 ms frames, no VAD/EC."""
    ep_cfg = pj.EpConfig()
    ep_cfg.uaConfig.threadCnt = 0
    ep_cfg.uaConfig.mainThreadOnly = False
    ep_cfg.uaConfig.maxCalls = cfg.max_calls
    ep_cfg.uaConfig.userAgent = "telephony-worker"
    ep_cfg.logConfig.level = cfg.pj_log_level
    ep_cfg.logConfig.consoleLevel = cfg.pj_log_level
    ep_cfg.logConfig.msgLogging = 0
    med = ep_cfg.medConfig
    med.clockRate = SAMPLE_RATE
    med.sndClockRate = SAMPLE_RATE
    med.channelCount = 1
    med.audioFramePtime = FRAME_MS
    med.ptime = FRAME_MS
    med.noVad = True
    med.ecTailLen = 0
    return ep_cfg


def _reader(stream: Any, worker: Worker) -> None:
    """ipc-reader thread: audio/mark/clear/pause/resume/cue go straight to `Playout`; the rest
    to main."""
    try:
        while (packet := ipc.read_message(stream)) is not None:
            _route(packet, worker)
    except Exception:
        log.exception("reading from the brain failed")
    finally:
        worker.commands.put(ipc.Control(0, ipc.Shutdown()))


def _route(packet: ipc.Packet, worker: Worker) -> None:
    """One packet from the brain, on the reader thread (never touches pjsua2)."""
    match packet:
        case ipc.Audio(num, pcm):
            if (playout := worker.playouts.get(num)) is not None:
                playout.push(pcm)
        case ipc.Control(num, ipc.Mark(name)):
            if (playout := worker.playouts.get(num)) is not None and playout.mark(name):
                worker.outbox.marks_done(num, (name,))
        case ipc.Control(num, ipc.Clear()):
            if (playout := worker.playouts.get(num)) is not None:
                dropped = pcm_ms(playout.clear())
                worker.outbox.send(num, ipc.Cleared(dropped, playout.last_audio_t))
        case ipc.Control(num, ipc.Pause()):
            if (playout := worker.playouts.get(num)) is not None:
                held = pcm_ms(playout.pause())
                worker.outbox.send(num, ipc.Paused(held, playout.last_audio_t))
        case ipc.Control(num, ipc.Resume()):
            if (playout := worker.playouts.get(num)) is not None:
                playout.resume()
        case ipc.Control(num, ipc.Cue(name)):
            if (playout := worker.playouts.get(num)) is not None:
                playout.cue(name)
        case ipc.Control(num, msg):
            if isinstance(msg, ipc.Dial):
                worker.playouts[num] = Playout()
            worker.commands.put(packet)


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Send fd 1 (pjlib's console log, already not the IPC pipe) to /dev/null for a while."""
    libc = ctypes.CDLL(None)
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        yield
    finally:
        libc.fflush(None)
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def _take_stdout() -> int:
    """Keep the real stdout for IPC only; route fd 1 (pjlib's printf logs) to stderr."""
    sys.stdout.flush()
    ipc_fd = os.dup(1)
    os.dup2(2, 1)
    return ipc_fd


def main(argv: list[str] | None = None) -> int:
    cfg, level = parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=level.upper(),
        format="%(asctime)s telephony.worker[%(process)d] %(levelname)s %(message)s",
    )
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the brain decides when we stop
    gc.disable()  # collected on the main thread only, see the module docstring
    try:
        trunk = TrunkSpec.from_env()
    except (TrunkSpecError, ValueError) as err:
        log.error("bad trunk settings: %s", err)
        return 2
    outbox = Outbox(_take_stdout())
    worker = Worker(cfg, outbox, trunk)

    def _on_term(_signum: int, _frame: Any) -> None:
        worker.stopping = True

    signal.signal(signal.SIGTERM, _on_term)
    try:
        worker.start()
    except pj.Error as err:
        log.error("worker start failed: %s", err.reason)
        worker.shutdown()
        outbox.close()
        return 2
    stdin = os.fdopen(0, "rb", buffering=1 << 16)
    threading.Thread(target=_reader, args=(stdin, worker), name="ipc-reader", daemon=True).start()
    clean = False
    try:
        worker.run()
    finally:
        clean = worker.shutdown()
        outbox.close()
    if not clean:
        os._exit(3)
    return 0


if __name__ == "__main__":
    sys.exit(main())
