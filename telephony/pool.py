"""`WorkerPool`: K media worker processes x M calls each, behind the `Telephony` interface.

Each worker is ``python -m telephony.worker`` (pjsua2; M <= 4 with the PyPI wheel) talking
`telephony.ipc` frames over its stdin/stdout. The pool reads every worker's stdout through an
asyncio subprocess protocol (no reader task per worker, no thread), routes frames and events to
the call handles, and supervises: a worker that dies ends each of its calls with
``Progress(ENDED, end_reason=Disposition.WORKER_LOST)`` and is started again. A worker that
hangs (alive, but its pjsua2 loop stuck: no answer to the pool's ping, sent every
``heartbeat_s``, for ``hang_timeout_s``) is killed, so it ends the same way and is restarted.

`dial()` never waits for a slot: when every slot is busy it raises `PoolBusyError` (a
`TelephonyBusyError`) at once and places nothing. The dialer paces itself by `free_slots`
(0 while full, and while the pool is not running), so it does not normally see that error.

The trunk (`telephony.trunk.TrunkSpec`: transport, credentials, registration, outbound proxy,
codecs) reaches every worker in its environment. A trunk that refuses our credentials (a call
ending `Disposition.TRUNK_REJECTED`, or a registration answered 401/403/407) is logged once,
as one error naming the trunk and the SIP code, and rested for ``trunk_rest_s``: `free_slots`
is 0 and `dial()` raises `TrunkRejectedError` meanwhile, so no lead's attempt is spent on it.
A caller-ID pool (`telephony.callerid.CallerIdPool`) gives each dial without its own
``caller_id`` the next healthy number and hears how each call ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.vocab import Disposition
from telephony import ipc
from telephony.base import (
    CallEvent,
    CallState,
    DialRequest,
    Dtmf,
    PlayoutCleared,
    PlayoutMark,
    PlayoutPaused,
    PlayoutStarted,
    Progress,
    TelephonyBusyError,
    TransferEnded,
    TrunkRejectedError,
)
from telephony.callerid import CallerIdPool
from telephony.channel import Channel
from telephony.trunk import ENV_VAR as TRUNK_ENV_VAR
from telephony.trunk import TrunkSpec

log = logging.getLogger("telephony.pool")

MAX_CALLS_PER_WORKER = 4  # PJSUA_MAX_CALLS of the PyPI pjsua2 wheel
HANGUP_WAIT_S = 5.0
STOP_WAIT_S = 5.0
AUDIO_BACKLOG_FRAMES = 500  # 10 s of unread callee audio, then the oldest frames are dropped
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)


class PoolBusyError(TelephonyBusyError):
    """Every call slot of every live worker is in use; try again when a call ends."""


class WorkerStartError(RuntimeError):
    """A media worker did not come up (bad address, port in use, pjsua2 missing...)."""


class PoolCall:
    """A call carried by a pool worker (implements `CallHandle`)."""

    def __init__(self, worker: _Worker, num: int, caller_id: str | None = None) -> None:
        self.call_id = uuid.uuid4().hex
        self.caller_id = caller_id  # our number shown to the callee (None: the trunk's user)
        self.answered = False
        self._worker = worker
        self._num = num
        self._events: Channel[CallEvent] = Channel()
        self._audio: Channel[bytes] = Channel(maxlen=AUDIO_BACKLOG_FRAMES)
        self._ended: Progress | None = None
        self._done = asyncio.Event()
        self._hangup_sent = False

    def events(self) -> Channel[CallEvent]:
        return self._events

    def audio(self) -> Channel[bytes]:
        return self._audio

    def send_audio(self, pcm: bytes) -> None:
        if len(pcm) % 2:
            raise ValueError("PCM16 audio must be an even number of bytes")
        if pcm and self._ended is None:
            self._worker.send_audio(self._num, pcm)

    def mark(self, name: str) -> None:
        self._send(ipc.Mark(name))

    def clear_audio(self) -> None:
        self._send(ipc.Clear())

    def pause_audio(self) -> None:
        self._send(ipc.Pause())

    def resume_audio(self) -> None:
        self._send(ipc.Resume())

    def cue(self, name: str) -> None:
        self._send(ipc.Cue(name))

    def send_dtmf(self, digits: str) -> None:
        """Send RFC 4733 DTMF digits (pjsua2 ``Call.dialDtmf`` in the worker)."""
        self._send(ipc.SendDtmf(digits))

    def transfer(self, target: str, mode: str = "auto") -> None:
        """REFER and/or a bridged call to `target`; answered with `TransferEnded`. A transfer
        that may bridge holds a second call slot of this call's worker (the agent's leg) until
        it is known not to (`_Worker.bridging`)."""
        if self._ended is None and mode != "refer":
            self._worker.bridging.add(self._num)
        self._send(ipc.Transfer(target, mode))

    async def hangup(self) -> None:
        """BYE (or CANCEL while ringing) and wait, up to 5 s, for the call to end."""
        if self._ended is not None:
            return
        if not self._hangup_sent:
            self._hangup_sent = True
            self._send(ipc.Hangup())
        await self._wait_end()

    @property
    def ended(self) -> Progress | None:
        return self._ended

    def _send(self, msg: ipc.Command) -> None:
        if self._ended is None:
            self._worker.send(self._num, msg)

    async def _wait_end(self) -> None:
        try:
            async with asyncio.timeout(HANGUP_WAIT_S):
                await self._done.wait()
        except TimeoutError:
            log.warning("call did not end in time", extra={"call_id": self.call_id})

    # Called by the worker's protocol, on the event loop.
    def _event(self, event: CallEvent) -> None:
        if self._ended is None:
            if isinstance(event, Progress) and event.state is CallState.ANSWERED:
                self.answered = True
            self._events.put(event)

    def _frame(self, pcm: bytes) -> None:
        self._audio.put(pcm)

    def _end(self, progress: Progress) -> None:
        if self._ended is not None:
            return
        self._ended = progress
        self._events.put(progress)
        self._events.close()
        self._audio.close()
        self._done.set()


class PoolInboundCall(PoolCall):
    """An inbound call on a listening pool (implements `InboundCall`)."""

    def __init__(self, worker: _Worker, num: int, to_user: str, from_uri: str) -> None:
        super().__init__(worker, num)
        self.to_user = to_user
        self.from_uri = from_uri

    async def answer(self, *, accept_transfer: bool = False) -> None:
        """Send 200 OK; `Progress(ANSWERED)` follows on `events()` once the ACK arrives.
        `accept_transfer`: take a REFER on this call (as a callee's phone would)."""
        self._send(ipc.Answer(accept_transfer))

    async def early_media(self) -> None:
        """Send 183 Session Progress with SDP: audio sent from now on is early media."""
        self._send(ipc.EarlyMedia())

    async def reject(self, code: int = 486) -> None:
        """Final non-2xx answer; waits, up to 5 s, for the call to end."""
        if self._ended is not None:
            return
        if not self._hangup_sent:
            self._hangup_sent = True
            self._send(ipc.Reject(int(code)))
        await self._wait_end()


class _Proc(asyncio.SubprocessProtocol):
    """One worker process: its pipes, its `ipc.Ready` and its exit. Feeds its `_Worker`."""

    def __init__(self, worker: _Worker) -> None:
        self._worker = worker
        self._decoder = ipc.Decoder()
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[ipc.Ready] = loop.create_future()
        self.exited: asyncio.Future[int | None] = loop.create_future()
        self.transport: asyncio.SubprocessTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.SubprocessTransport)
        self.transport = transport

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd != 1:
            return
        try:
            messages = self._decoder.feed(data)
        except (ipc.ProtocolError, ValueError):
            log.exception("bad frame from media worker", extra={"worker": self._worker.index})
            self.kill()
            return
        for packet in messages:
            match packet:
                case ipc.Control(_, ipc.Ready() as ready):
                    if not self.ready.done():
                        self._worker.on_ready(self, ready)  # before anyone sees it running
                        self.ready.set_result(ready)
                case _:
                    self._worker.on_message(packet)

    def connection_lost(self, exc: Exception | None) -> None:
        rc = self.transport.get_returncode() if self.transport is not None else None
        if self.transport is not None:
            self.transport.close()
        if self._worker.proc is self:
            self._worker.on_lost(rc)
        if not self.exited.done():
            self.exited.set_result(rc)

    @property
    def running(self) -> bool:
        return self.ready.done() and not self.exited.done()

    def write(self, data: bytes) -> None:
        if self.transport is None or self.exited.done():
            return
        stdin = self.transport.get_pipe_transport(0)
        if stdin is not None and not stdin.is_closing():
            stdin.write(data)  # type: ignore[attr-defined]

    def close_stdin(self) -> None:
        if self.transport is not None:
            stdin = self.transport.get_pipe_transport(0)
            if stdin is not None:
                stdin.close()

    def kill(self) -> None:
        if self.transport is not None and self.transport.get_returncode() is None:
            with contextlib.suppress(ProcessLookupError):
                self.transport.kill()


class _Worker:
    """One worker slot: its current process, its calls, and its restarts."""

    def __init__(
        self,
        index: int,
        argv: list[str],
        max_calls: int,
        start_timeout: float,
        on_incoming: Callable[[PoolInboundCall], None],
        hooks: _PoolHooks | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.index = index
        self.hooks = hooks
        self.extra_env = env or {}
        self.registered = False
        self.start_timeout = start_timeout
        self.argv = argv
        self.max_calls = max_calls
        self.on_incoming = on_incoming
        self.calls: dict[int, PoolCall] = {}
        # calls whose transfer holds (or may hold) a bridged leg: the agent's leg is a pjsua
        # call of the same worker, so it takes one of its `max_calls` slots
        self.bridging: set[int] = set()
        self.sip_port = 0
        self.pid: int | None = None
        self.started_at = 0.0
        self.proc: _Proc | None = None
        self.last_pong = 0.0
        self.kill_reason = ""
        self._next_num = 1
        self._ping_seq = 0

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.running

    @property
    def free_slots(self) -> int:
        return self.max_calls - len(self.calls) - len(self.bridging) if self.alive else 0

    async def spawn(self) -> None:
        loop = asyncio.get_running_loop()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH")]))
        env.update(self.extra_env)
        self._next_num = 1
        self.registered = False
        proc = _Proc(self)
        self.proc = proc
        await loop.subprocess_exec(
            lambda: proc,
            *self.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=None,
            env=env,
        )
        waiters: set[asyncio.Future[Any]] = {proc.ready, proc.exited}
        try:
            await asyncio.wait(waiters, timeout=self.start_timeout, return_when="FIRST_COMPLETED")
        finally:
            if not proc.ready.done():
                proc.kill()
                await asyncio.wait({proc.exited}, timeout=STOP_WAIT_S)
        if not proc.running:
            rc = proc.exited.result() if proc.exited.done() else None
            raise WorkerStartError(f"media worker {self.index} did not start (exit code {rc})")
        log.info("media worker ready", extra={"worker": self.index, "sip_port": self.sip_port})

    def on_ready(self, proc: _Proc, ready: ipc.Ready) -> None:
        """The new process answered: from now on `alive`, so its pid, port and heartbeat
        clock must already be its own (not the lost process's)."""
        self.sip_port = ready.sip_port
        self.pid = proc.transport.get_pid() if proc.transport is not None else None
        self.started_at = self.last_pong = time.monotonic()
        self.kill_reason = ""

    async def wait_exit(self) -> int | None:
        assert self.proc is not None
        return await asyncio.shield(self.proc.exited)

    async def stop(self) -> None:
        """Close stdin (the worker hangs up and exits), then kill it if it lingers."""
        proc = self.proc
        if proc is None or proc.exited.done():
            return
        proc.close_stdin()
        try:
            async with asyncio.timeout(STOP_WAIT_S):
                await asyncio.shield(proc.exited)
        except TimeoutError:
            log.warning("media worker did not stop; killing it", extra={"worker": self.index})
            proc.kill()
            await asyncio.shield(proc.exited)

    def kill(self, reason: str = "") -> None:
        if self.proc is not None:
            self.kill_reason = reason
            self.proc.kill()

    def ping(self) -> None:
        self._ping_seq += 1
        self.send(0, ipc.Ping(self._ping_seq))

    def next_num(self) -> int:
        num = self._next_num
        self._next_num += 1
        return num

    def send(self, num: int, msg: ipc.Command) -> None:
        if self.proc is not None:
            self.proc.write(ipc.encode(msg, num))

    def send_audio(self, num: int, pcm: bytes) -> None:
        if self.proc is not None:
            self.proc.write(ipc.encode_audio(num, pcm))

    def on_message(self, packet: ipc.Packet) -> None:
        match packet:
            case ipc.Audio(num, pcm):
                if (call := self.calls.get(num)) is not None:
                    call._frame(pcm)
            case ipc.Control(_, ipc.Pong()):
                self.last_pong = time.monotonic()
            case ipc.Control(_, ipc.Registration(code, reason, active)):
                self.registered = active
                if self.hooks is not None:
                    self.hooks.registration(self, code, reason, active)
            case ipc.Control(num, ipc.Incoming(to_user, from_uri)):
                inbound = PoolInboundCall(self, num, to_user, from_uri)
                self.calls[num] = inbound
                inbound._event(Progress(CallState.RINGING, 180, "Ringing"))
                self.on_incoming(inbound)
            case ipc.Control(num, msg):
                if (call := self.calls.get(num)) is not None:
                    self._call_event(call, num, msg)

    def _call_event(self, call: PoolCall, num: int, msg: ipc.Message) -> None:
        match msg:
            case ipc.CallProgress(state, code, reason):
                call._event(Progress(state, code, reason))
            case ipc.Ended(code, reason, disposition, hangup_by):
                del self.calls[num]
                self.bridging.discard(num)  # its leg is hung up with it
                end = Progress(CallState.ENDED, code, reason, disposition, hangup_by)
                if self.hooks is not None:
                    self.hooks.call_ended(call, end)
                call._end(end)
            case ipc.MarkDone(name):
                call._event(PlayoutMark(name))
            case ipc.Cleared(dropped_ms, last_audio_t):
                call._event(PlayoutCleared(dropped_ms, last_audio_t))
            case ipc.Paused(held_ms, last_audio_t):
                call._event(PlayoutPaused(held_ms, last_audio_t))
            case ipc.Started(name, t):
                call._event(PlayoutStarted(name, t))
            case ipc.DtmfReceived(digit):
                call._event(Dtmf(digit))
            case ipc.TransferStatus(mode, code, answered):
                if mode == "refer" or not answered:  # no leg, or none any more
                    self.bridging.discard(num)
                call._event(TransferEnded(mode, code, answered))
            case _:
                log.warning("unexpected message from media worker", extra={"kind": msg.KIND})

    def on_lost(self, rc: int | None) -> None:
        calls, self.calls = self.calls, {}
        self.bridging.clear()
        why = f"media worker {self.kill_reason or 'exited'} (code {rc})"
        lost = Progress(CallState.ENDED, None, why, Disposition.WORKER_LOST, None)
        for call in calls.values():
            call._end(lost)
        if calls:
            log.warning(
                "media worker lost with calls up",
                extra={"worker": self.index, "returncode": rc, "calls": len(calls)},
            )


class _PoolHooks:
    """What a worker tells its pool about the trunk: registrations and how calls ended. Keeps
    the trunk's rest (after it refused us) and the caller-ID pool's health."""

    def __init__(
        self,
        trunk: TrunkSpec,
        caller_ids: CallerIdPool | None,
        rest_s: float,
        clock: Callable[[], float],
    ) -> None:
        self.trunk = trunk
        self.caller_ids = caller_ids
        self.rest_s = rest_s
        self.clock = clock
        self.rested_until = 0.0
        self.refusal = ""  # "SIP 407 Proxy Authentication Required", while resting

    @property
    def resting(self) -> bool:
        return self.clock() < self.rested_until

    def refused(self, what: str, code: int | None, reason: str) -> None:
        """The trunk refused us: one error line per streak, then rest the trunk."""
        self.refusal = f"SIP {code} {reason}".strip()
        if not self.resting:
            log.error(
                "trunk %r refused %s: %s; no calls through it for %.0f s",
                self.trunk.name,
                what,
                self.refusal,
                self.rest_s,
            )
        self.rested_until = self.clock() + self.rest_s

    def accepted(self) -> None:
        if self.rested_until:
            log.info("trunk %r accepts us again", self.trunk.name)
        self.rested_until = 0.0

    def error(self) -> TrunkRejectedError:
        return TrunkRejectedError(
            f"trunk {self.trunk.name!r} refused our credentials ({self.refusal}); resting it"
        )

    def registration(self, worker: _Worker, code: int, reason: str, active: bool) -> None:
        if active:
            self.accepted()
        elif code in (401, 403, 407):
            self.refused("registration", code, reason)
        else:
            log.warning(
                "trunk %r registration failed: SIP %d %s",
                self.trunk.name,
                code,
                reason,
                extra={"worker": worker.index},
            )

    def call_ended(self, call: PoolCall, end: Progress) -> None:
        if end.end_reason == Disposition.TRUNK_REJECTED:
            self.refused("the call", end.sip_code, end.reason)
        elif call.answered:
            self.accepted()
        if self.caller_ids is not None and call.caller_id is not None:
            self.caller_ids.record(call.caller_id, end.end_reason)


class WorkerPool:
    """K media worker processes x M calls, implementing `Telephony`.

    Ports: with ``sip_port=0`` each worker binds a free port; otherwise worker i binds
    ``sip_port + i``. Likewise RTP: 0 = free ports, else worker i uses
    ``rtp_port_start + i * rtp_ports_per_worker`` onwards. `sip_ports` lists what is bound.
    """

    def __init__(
        self,
        *,
        processes: int = 1,
        calls_per_worker: int = MAX_CALLS_PER_WORKER,
        sip_host: str = "127.0.0.1",
        sip_port: int = 0,
        listen: bool = False,
        python: str = sys.executable,
        rtp_port_start: int = 0,
        rtp_ports_per_worker: int = 100,
        start_timeout_s: float = 20.0,
        restart_delay_s: float = 0.5,
        heartbeat_s: float = 1.0,
        hang_timeout_s: float = 10.0,
        worker_log_level: str = "WARNING",
        pj_log_level: int = 1,
        trunk: TrunkSpec | None = None,
        caller_ids: CallerIdPool | None = None,
        trunk_rest_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`trunk`: how calls reach the carrier (default: plain UDP, no credentials);
        `caller_ids`: numbers to rotate as the From user; `trunk_rest_s`: how long a trunk
        that refused our credentials is left alone; `clock` times that rest."""
        if processes < 1:
            raise ValueError("processes must be >= 1")
        if not 0 < heartbeat_s < hang_timeout_s:
            raise ValueError("need 0 < heartbeat_s < hang_timeout_s")
        if not 1 <= calls_per_worker <= MAX_CALLS_PER_WORKER:
            raise ValueError(f"calls_per_worker must be 1..{MAX_CALLS_PER_WORKER} with this wheel")
        if sip_port and not 0 < sip_port + processes - 1 < 65536:
            raise ValueError("sip_port range does not fit")
        if rtp_port_start and not 0 < rtp_port_start + processes * rtp_ports_per_worker < 65536:
            raise ValueError("RTP port range does not fit")
        self.listen = listen
        self._restart_delay = restart_delay_s
        self._heartbeat_s = heartbeat_s
        self._hang_timeout_s = hang_timeout_s
        self._incoming: Channel[PoolInboundCall] = Channel()
        self.trunk = trunk or TrunkSpec()
        self._hooks = _PoolHooks(self.trunk, caller_ids, trunk_rest_s, clock)
        env = {TRUNK_ENV_VAR: self.trunk.to_json()}
        self._workers: list[_Worker] = []
        rtp_range = rtp_ports_per_worker if rtp_port_start else 0
        for i in range(processes):
            rtp = rtp_port_start + i * rtp_ports_per_worker if rtp_port_start else 0
            argv = [
                python, "-m", "telephony.worker",
                "--sip-host", sip_host,
                "--sip-port", str(sip_port + i if sip_port else 0),
                "--rtp-port", str(rtp),
                "--rtp-port-range", str(rtp_range),
                "--max-calls", str(calls_per_worker),
                "--log-level", worker_log_level,
                "--pj-log-level", str(pj_log_level),
            ]  # fmt: skip
            if listen:
                argv.append("--listen")
            self._workers.append(
                _Worker(
                    i,
                    argv,
                    calls_per_worker,
                    start_timeout_s,
                    self._incoming.put,
                    hooks=self._hooks,
                    env=env,
                )
            )
        self._supervisors: list[asyncio.Task[None]] = []
        self._started = False
        self._closing = False

    # --- introspection ---

    @property
    def sip_ports(self) -> list[int]:
        """SIP port bound by each worker, in worker order (0 while one is restarting)."""
        return [w.sip_port if w.alive else 0 for w in self._workers]

    @property
    def worker_pids(self) -> list[int | None]:
        return [w.pid if w.alive else None for w in self._workers]

    @property
    def free_slots(self) -> int:
        """Calls `dial()` can place now: free slots of the live workers; 0 before `start()`
        has brought them up and from `close()` on (`Telephony.free_slots`)."""
        if not self._started or self._closing or self._hooks.resting:
            return 0
        return sum(w.free_slots for w in self._workers)

    @property
    def registered(self) -> bool:
        """Every live worker holds a registration at the trunk (False while one has not)."""
        live = [w for w in self._workers if w.alive]
        return bool(live) and all(w.registered for w in live)

    @property
    def trunk_resting(self) -> bool:
        """The trunk refused our credentials lately: no calls through it for now."""
        return self._hooks.resting

    @property
    def capacity(self) -> int:
        return sum(w.max_calls for w in self._workers)

    # --- Telephony ---

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        results = await asyncio.gather(*(w.spawn() for w in self._workers), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            await self.close()
            raise WorkerStartError(f"{len(errors)} media worker(s) failed to start") from errors[0]
        self._supervisors = [
            asyncio.create_task(self._supervise(w), name=f"telephony.worker[{w.index}].supervise")
            for w in self._workers
        ]
        self._supervisors.append(asyncio.create_task(self._watchdog(), name="telephony.watchdog"))

    async def close(self) -> None:
        """Stop every worker cleanly (their calls are hung up); idempotent."""
        if self._closing:
            return
        self._closing = True
        self._incoming.close()
        for task in self._supervisors:
            task.cancel()
        await asyncio.gather(*self._supervisors, return_exceptions=True)
        self._supervisors = []
        await asyncio.gather(*(w.stop() for w in self._workers))

    async def dial(self, request: DialRequest) -> PoolCall:
        if not self._started or self._closing:
            raise RuntimeError("pool is not running")
        if self._hooks.resting:
            raise self._hooks.error()
        worker = max(self._workers, key=lambda w: w.free_slots)
        if worker.free_slots <= 0:
            raise PoolBusyError(f"all {self.capacity} call slots are busy")
        caller_id = request.caller_id
        if caller_id is None and self._hooks.caller_ids is not None:
            caller_id = self._hooks.caller_ids.next()
        num = worker.next_num()
        call = PoolCall(worker, num, caller_id)
        worker.calls[num] = call
        dial = ipc.Dial(
            request.uri,
            request.username,
            request.password,
            request.ring_timeout_s,
            {str(k): str(v) for k, v in request.headers.items()},
            caller_id,
            record_dir=request.record_dir,
        )
        worker.send(num, dial)
        return call

    async def incoming(self) -> PoolInboundCall:
        if not self.listen:
            raise RuntimeError("this pool does not listen for inbound calls")
        try:
            return await self._incoming.get()
        except EOFError:
            raise RuntimeError("pool closed") from None

    async def __aenter__(self) -> WorkerPool:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- supervision ---

    async def _watchdog(self) -> None:
        """Ping every live worker; kill one whose main loop has not answered for too long.

        Time our own event loop stood still (a blocking call on it: a lazy import, a model
        load) is not held against a worker: its pongs sat unread in the pipe meanwhile.
        """
        last = time.monotonic()
        while not self._closing:
            now = time.monotonic()
            stalled = now - last - self._heartbeat_s  # how late this tick came
            last = now
            for worker in self._workers:
                if not worker.alive:
                    continue
                if stalled > self._heartbeat_s:
                    worker.last_pong = min(now, worker.last_pong + stalled)
                if now - worker.last_pong > self._hang_timeout_s:
                    log.error(
                        "media worker unresponsive; killing it",
                        extra={"worker": worker.index, "calls": len(worker.calls)},
                    )
                    worker.kill("unresponsive, killed")
                else:
                    worker.ping()
            await asyncio.sleep(self._heartbeat_s)

    async def _supervise(self, worker: _Worker) -> None:
        delay = self._restart_delay
        while not self._closing:
            rc = await worker.wait_exit()
            if self._closing:
                return
            log.warning(
                "media worker exited; restarting", extra={"worker": worker.index, "returncode": rc}
            )
            if time.monotonic() - worker.started_at > 30.0:
                delay = self._restart_delay
            while not self._closing:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                try:
                    await worker.spawn()
                    break
                except WorkerStartError:
                    log.error("media worker restart failed", extra={"worker": worker.index})
