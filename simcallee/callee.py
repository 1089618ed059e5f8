"""A simulated customer: a real SIP UA on loopback that answers, talks and records.

It listens through the same telephony workers the robot uses (so every byte crosses real
SIP/RTP), speaks synthesized telephone-band Mandarin, waits for the robot to finish each
reply before it speaks again, and writes one WAV per call with what it heard. Its patience
(``robot_silence_timeout_s``) counts only the robot's silence, so a slow reply, never a long
one, makes it give up (``CallReport.gave_up``). Each report also times the call at the SIP
edge (its own speech as it went out, the robot audio as it came in, late frames): bench/load.py
measures the latency a callee hears from them.
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

import numpy as np

from core.audio import FRAME_BYTES, FRAME_S, pcm_seconds
from core.yamlload import load_yaml
from speech.amd import beep
from speech.audio import silence, write_wav
from speech.vad import VoiceEnded, VoiceStarted
from telephony.base import CallState as LineState
from telephony.base import Dtmf, InboundCall, PlayoutMark, PlayoutStarted, Progress, Telephony

log = logging.getLogger(__name__)

LOUD = 400  # peak sample of a frame with speech in it (speech peaks in the thousands)
ROBOT_GAP_S = 0.24  # robot audio quiet this long ends a run (pauses between words are shorter)
LATE_GAP_S = 0.1  # a robot frame this long after the previous one was late (cadence 20 ms)


def _loud(frame: bytes) -> bool:
    return int(np.abs(np.frombuffer(frame, "<i2")).max(initial=0)) >= LOUD


def speech_span(pcm: bytes) -> tuple[float, float]:
    """Seconds from the start of `pcm` to its first and past its last loud frame."""
    starts = range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES)
    loud = [i for i in starts if _loud(pcm[i : i + FRAME_BYTES])]
    if not loud:
        return 0.0, 0.0
    return loud[0] / FRAME_BYTES * FRAME_S, (loud[-1] / FRAME_BYTES + 1) * FRAME_S


@dataclass(frozen=True, slots=True)
class Persona:
    name: str
    lines: tuple[str, ...] = ()
    reject: int | None = None
    ring_ms: int = 300
    hangup_after_ms: int | None = None
    linger_s: float = 30.0
    press: str = ""  # DTMF keys pressed after the robot's first line (before any line)
    accept_transfer: bool = False  # a REFER is taken (the callee's phone calls the target)
    speak_first: bool = False  # say the first line on answering (an agent taking a transfer)
    early_media: str = ""  # a carrier announcement played as early media (183), never answering
    early_media_s: float = 20.0  # ... repeated this long, then `reject` (or wait to be cancelled)
    beep: bool = False  # a record tone after the first line (a voicemail greeting)
    barge_in_s: float | None = None  # say the first line this long into the robot's, over it


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
    keys_heard: str = ""  # DTMF keys the robot sent (RFC 4733)
    # timing at the SIP edge (time.monotonic, host-wide), for bench/load.py: each line's
    # speech (first to last loud frame, as it went out on RTP), the runs of robot audio as
    # received (loud frames less than ROBOT_GAP_S apart), robot frames received and late
    speech: list[tuple[float, float]] = field(default_factory=list)
    robot_audio: list[tuple[float, float]] = field(default_factory=list)
    frames: int = 0
    late_frames: int = 0  # frames missing in gaps of LATE_GAP_S or more (late or lost)
    gave_up: bool = False  # the robot stayed silent for the whole patience


def load_personas(path: str | Path) -> tuple[dict[str, Persona], Persona]:
    data = load_yaml(path, what="personas file") or {}  # strict: no aliases, bounded size

    def make(raw: Mapping[str, Any], where: str) -> Persona:
        known = {"name", "lines", "reject", "ring_ms", "hangup_after_ms", "linger_s"}
        known |= {"press", "accept_transfer", "speak_first", "early_media", "early_media_s", "beep"}
        known |= {"barge_in_s"}
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
            press=str(raw.get("press", "")),
            accept_transfer=bool(raw.get("accept_transfer", False)),
            speak_first=bool(raw.get("speak_first", False)),
            early_media=str(raw.get("early_media", "")),
            early_media_s=float(raw.get("early_media_s", 20.0)),
            beep=bool(raw.get("beep", False)),
            barge_in_s=None if raw.get("barge_in_s") is None else float(raw["barge_in_s"]),
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
            for line in (*p.lines, p.early_media):
                if line:
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

    def persona_for(self, number: str) -> Persona:
        """The persona of a dialled number: by the number as dialled, else as dialled in China
        without +86 (a lead imported through the console is stored in E.164, the personas
        are keyed by national numbers), else the default."""
        found = self._personas.get(number)
        if found is None and number.startswith("+86"):
            found = self._personas.get(number[3:])
        return found or self._default

    async def _handle(self, call: InboundCall) -> None:
        persona = self.persona_for(call.to_user)
        report = CallReport(call.call_id, call.to_user, persona.name, answered=False)
        self.reports.append(report)
        await asyncio.sleep(persona.ring_ms / 1000)
        if persona.early_media:
            await self._announce(call, persona)
        if persona.reject is not None:
            await call.reject(persona.reject)
            return
        if persona.early_media:
            return  # a carrier announcement never answers
        await call.answer(accept_transfer=persona.accept_transfer)
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

    async def _announce(self, call: InboundCall, persona: Persona) -> None:
        """Play the persona's announcement as early media (183 Session Progress), again and
        again for ``early_media_s`` or until the caller cancels."""
        pcm = await self._voice.get(persona.early_media) + silence(0.8)
        await call.early_media()
        ended = asyncio.ensure_future(_until_ended(call))
        try:
            async with asyncio.timeout(persona.early_media_s):
                while not ended.done():
                    call.send_audio(pcm)
                    await asyncio.wait({ended}, timeout=pcm_seconds(pcm))
        except TimeoutError:
            pass
        finally:
            ended.cancel()

    def _save(self, call_id: str, persona: str, pcm: bytes) -> Path:
        path = self._dir / f"{persona}-{call_id}.wav"
        write_wav(path, pcm)  # the phone format: 8 kHz PCM16 mono
        return path


async def _until_ended(call: InboundCall) -> None:
    async for ev in call.events():
        if isinstance(ev, Progress) and ev.state is LineState.ENDED:
            return


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
        self.started: dict[str, float] = {}  # cue name -> when its first frame went out
        self.ended = asyncio.Event()
        self.robot_talking = False  # the endpointer hears the robot now
        self.robot_quiet_since = time.monotonic()
        self.last_frame_t = 0.0

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
            self._time_frame(frame, time.monotonic())
            for ev in self.endpointer.push(frame):
                if isinstance(ev, VoiceStarted):
                    self.robot_started.set()
                    self.robot_talking = True
                elif isinstance(ev, VoiceEnded):
                    self.robot_done.set()
                    self.robot_talking = False
                    self.robot_quiet_since = time.monotonic()

    def _time_frame(self, frame: bytes, now: float) -> None:
        """Count the frame (late when it came LATE_GAP_S after the last) and extend the runs
        of robot audio with it when it is loud."""
        rep = self.report
        if rep.frames and now - self.last_frame_t >= LATE_GAP_S:  # the frames the gap held
            rep.late_frames += round((now - self.last_frame_t) / FRAME_S) - 1
        rep.frames += 1
        self.last_frame_t = now
        if not _loud(frame):
            return
        runs = rep.robot_audio
        if runs and now - runs[-1][1] < ROBOT_GAP_S:
            runs[-1] = (runs[-1][0], now)
        else:
            runs.append((now, now))

    async def _events(self) -> None:
        async for ev in self.call.events():
            if isinstance(ev, PlayoutMark) and ev.name in self.marks:
                self.marks[ev.name].set()
            elif isinstance(ev, PlayoutStarted):
                self.started[ev.name] = ev.t
            elif isinstance(ev, Dtmf):
                self.report.keys_heard += ev.digit
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

    async def _robot_finished(self) -> bool:
        """Wait until the robot has spoken and gone quiet. Patience (``robot_timeout_s``)
        counts only the robot's silence, never its own long lines; False when it runs out
        (``report.gave_up``) or the call ends."""
        waiting_since = time.monotonic()
        while True:
            now = time.monotonic()
            if self.robot_talking:
                self.robot_quiet_since = now
            left = self.robot_timeout_s - (now - max(waiting_since, self.robot_quiet_since))
            if left <= 0:
                self.report.gave_up = True
                return False
            if await self._until(self.robot_done, min(left, 1.0)):
                return True
            if self.ended.is_set():
                return False

    async def _speak(self, i: int, line: str) -> None:
        """Say `line` (cued, so its speech is timed as it goes out) and wait for its end."""
        pcm = await self.voice.get(line)
        done = self.marks[f"line{i}"] = asyncio.Event()
        self.call.cue(f"line{i}")
        self.call.send_audio(pcm)
        if i == 0 and self.persona.beep:
            self.call.send_audio(silence(0.3) + beep())
        self.call.mark(f"line{i}")
        self.report.lines_spoken.append(line)
        await self._until(done, pcm_seconds(pcm) + 5)
        t = self.started.get(f"line{i}")
        if t is not None:
            on, off = speech_span(pcm)
            self.report.speech.append((t + on, t + off))

    async def _talk(self) -> None:
        p = self.persona
        if p.hangup_after_ms is not None:
            if await self._until(self.robot_started, self.robot_timeout_s):
                await asyncio.sleep(p.hangup_after_ms / 1000)
                self.report.hung_up_by_callee = True
                await self.call.hangup()
            return
        if p.press:
            if not await self._robot_finished():
                return
            self.robot_done.clear()
            self.call.send_dtmf(p.press)
            self.report.lines_spoken.append(f"<dtmf {p.press}>")
        for i, line in enumerate(p.lines):
            if i == 0 and p.barge_in_s is not None:  # over the robot's first line
                if not await self._until(self.robot_started, self.robot_timeout_s):
                    self.report.gave_up = not self.ended.is_set()
                    return
                await asyncio.sleep(p.barge_in_s)
            elif (i > 0 or not p.speak_first) and not await self._robot_finished():
                return  # (an agent greets first, everyone else answers)
            self.robot_done.clear()
            await self._speak(i, line)
            self.robot_done.clear()  # what the VAD saw while we talked is not a robot reply
        await self._until(self.ended, p.linger_s)
        if not self.ended.is_set():
            self.report.hung_up_by_callee = True
