"""A simulated customer: a real SIP UA on loopback that answers, talks and records.

It listens through the same telephony workers the robot uses (so every byte crosses real
SIP/RTP), speaks synthesized telephone-band Mandarin, waits for the robot to finish each
reply before it speaks again, and writes one WAV per call with what it heard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.audio import pcm_seconds
from core.yamlload import load_yaml
from speech.audio import write_wav
from speech.vad import VoiceEnded, VoiceStarted
from telephony.base import CallState as LineState
from telephony.base import InboundCall, PlayoutMark, Progress, Telephony

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Persona:
    name: str
    lines: tuple[str, ...] = ()
    reject: int | None = None
    ring_ms: int = 300
    hangup_after_ms: int | None = None
    linger_s: float = 30.0


@dataclass(slots=True)
class CallReport:
    call_id: str
    number: str
    persona: str
    answered: bool
    lines_spoken: list[str] = field(default_factory=list)
    recording: str | None = None
    heard_s: float = 0.0
    hung_up_by_callee: bool = False


def load_personas(path: str | Path) -> tuple[dict[str, Persona], Persona]:
    data = load_yaml(path, what="personas file") or {}  # strict: no aliases, bounded size

    def make(raw: Mapping[str, Any], where: str) -> Persona:
        known = {"name", "lines", "reject", "ring_ms", "hangup_after_ms", "linger_s"}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"{path}: {where} has unknown keys {sorted(unknown)}")
        return Persona(
            name=str(raw.get("name", where)),
            lines=tuple(str(x) for x in raw.get("lines", ())),
            reject=raw.get("reject"),
            ring_ms=int(raw.get("ring_ms", 300)),
            hangup_after_ms=raw.get("hangup_after_ms"),
            linger_s=float(raw.get("linger_s", 30.0)),
        )

    personas = {str(k): make(v, str(k)) for k, v in (data.get("personas") or {}).items()}
    default = make(data.get("default") or {"name": "unknown_number", "reject": 404}, "default")
    return personas, default


class SimulatedCallee:
    def __init__(
        self,
        *,
        telephony: Telephony,
        personas: Mapping[str, Persona],
        default: Persona,
        voice: Any,  # has `async get(text) -> bytes` (a PromptCache over a TTS engine)
        make_endpointer: Callable[[], Any],
        recordings_dir: str | Path,
        robot_silence_timeout_s: float = 20.0,
    ) -> None:
        self._tel = telephony
        self._personas = dict(personas)
        self._default = default
        self._voice = voice
        self._make_endpointer = make_endpointer
        self._dir = Path(recordings_dir)
        self._robot_timeout = robot_silence_timeout_s
        self.reports: list[CallReport] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def prepare(self) -> None:
        """Render every persona line once, so answering never waits for TTS."""
        for p in [*self._personas.values(), self._default]:
            for line in p.lines:
                await self._voice.get(line)

    async def serve(self) -> None:
        """Answer calls until cancelled."""
        self._dir.mkdir(parents=True, exist_ok=True)
        try:
            while True:
                call = await self._tel.incoming()
                task = asyncio.create_task(self._handle(call), name=f"callee[{call.call_id}]")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        finally:
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, call: InboundCall) -> None:
        persona = self._personas.get(call.to_user, self._default)
        report = CallReport(call.call_id, call.to_user, persona.name, answered=False)
        self.reports.append(report)
        await asyncio.sleep(persona.ring_ms / 1000)
        if persona.reject is not None:
            await call.reject(persona.reject)
            return
        await call.answer()
        report.answered = True
        heard = bytearray()
        try:
            await _Conversation(
                call,
                persona,
                self._voice,
                self._make_endpointer(),
                heard,
                report,
                self._robot_timeout,
            ).run()
        except Exception:
            log.exception("simulated callee failed", extra={"call": call.call_id})
            raise
        finally:
            with contextlib.suppress(Exception):
                await call.hangup()
            report.heard_s = pcm_seconds(heard)
            report.recording = str(self._save(call.call_id, persona.name, bytes(heard)))

    def _save(self, call_id: str, persona: str, pcm: bytes) -> Path:
        path = self._dir / f"{persona}-{call_id}.wav"
        write_wav(path, pcm)  # the phone format: 8 kHz PCM16 mono
        return path


class _Conversation:
    """One answered call: listen to the robot, speak the next line when it stops."""

    def __init__(
        self,
        call: InboundCall,
        persona: Persona,
        voice: Any,
        endpointer: Any,
        heard: bytearray,
        report: CallReport,
        robot_timeout_s: float,
    ) -> None:
        self.call, self.persona, self.voice = call, persona, voice
        self.endpointer, self.heard, self.report = endpointer, heard, report
        self.robot_timeout_s = robot_timeout_s
        self.robot_started = asyncio.Event()
        self.robot_done = asyncio.Event()  # the robot spoke and then went quiet
        self.marks: dict[str, asyncio.Event] = {}
        self.ended = asyncio.Event()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            listen = tg.create_task(self._listen(), name=f"callee[{self.call.call_id}].listen")
            events = tg.create_task(self._events(), name=f"callee[{self.call.call_id}].events")
            try:
                await self._talk()
            finally:
                listen.cancel()
                events.cancel()

    async def _listen(self) -> None:
        async for frame in self.call.audio():
            self.heard += frame
            for ev in self.endpointer.push(frame):
                if isinstance(ev, VoiceStarted):
                    self.robot_started.set()
                elif isinstance(ev, VoiceEnded):
                    self.robot_done.set()

    async def _events(self) -> None:
        async for ev in self.call.events():
            if isinstance(ev, PlayoutMark) and ev.name in self.marks:
                self.marks[ev.name].set()
            elif isinstance(ev, Progress) and ev.state is LineState.ENDED:
                self.ended.set()
                return

    async def _until(self, event: asyncio.Event, within_s: float) -> bool:
        """Wait for `event`; False if the call ended or the timeout passed first."""
        waiters = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(self.ended.wait())]
        try:
            await asyncio.wait(waiters, timeout=within_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
        return event.is_set() and not self.ended.is_set()

    async def _talk(self) -> None:
        p = self.persona
        if p.hangup_after_ms is not None:
            if await self._until(self.robot_started, self.robot_timeout_s):
                await asyncio.sleep(p.hangup_after_ms / 1000)
                self.report.hung_up_by_callee = True
                await self.call.hangup()
            return
        for i, line in enumerate(p.lines):
            if not await self._until(self.robot_done, self.robot_timeout_s):
                return
            self.robot_done.clear()
            pcm = await self.voice.get(line)
            done = self.marks[f"line{i}"] = asyncio.Event()
            t0 = time.monotonic()
            self.call.send_audio(pcm)
            self.call.mark(f"line{i}")
            self.report.lines_spoken.append(line)
            await self._until(done, pcm_seconds(pcm) + 5)
            log.debug("callee line played in %.1fs", time.monotonic() - t0)
            self.robot_done.clear()  # what the VAD saw while we talked is not a robot reply
        await self._until(self.ended, p.linger_s)
        if not self.ended.is_set():
            self.report.hung_up_by_callee = True
