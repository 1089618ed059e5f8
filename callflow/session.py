"""CallSession: one live call wired through a recognizer stream -> NLU -> state machine -> TTS.

Tasks (one TaskGroup per call, all named `call[<id>].<role>`):
  events   call progress + playout marks -> machine events (never wait behind audio)
  listen   callee frames -> asr_stream.push(frame)   (sync, never blocks)
  asr      stream events: speech start while the robot talks -> barge-in (a direct call);
           partials are kept for the turn record; finals -> the nlu queue
  nlu      final transcript -> intent -> UserSaid   (inference off the loop)
  drive    machine events -> step() -> actions (say, hang up, finish)

Continuations: when the recognizer ends a turn early (a short pause after words that read
complete) and the callee goes on within ``continuation_s``, while the robot's reply to the first
part is still interruptible and was cut short by that speech, the two parts are one turn: the
machine is rolled back to before the first part and steps once on the joined text. A reply that
played to its end, or one that finished the call, is never undone.

Turn latency is measured from the true end of the callee's speech (the wall time at which the
frame holding the final's ``end_t`` was pushed) to the moment the reply audio is queued, so it
includes the endpoint silence, the decode and the NLU.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from nlu.base import IntentClassifier
from speech.asr.base import (
    AsrEngine,
    AsrStreamError,
    Final,
    Partial,
    RecognizeStream,
    SpeechEnded,
    SpeechStarted,
    StreamingAsr,
)
from speech.dialect import DIALECTS, normalize_dialect
from telephony.base import (
    FRAME_BYTES,
    CallEvent,
    CallHandle,
    CallState,
    PlayoutCleared,
    PlayoutMark,
    Progress,
)

from .machine import (
    Answered,
    Event,
    Finish,
    Hangup,
    NoInput,
    PlaybackFinished,
    RemoteHangup,
    Say,
    UserSaid,
    step,
)
from .machine import (
    CallState as DialogState,
)
from .script import Script

log = logging.getLogger(__name__)


class PromptSource(Protocol):
    async def get(self, text: str) -> bytes: ...


_FRAME_S = 0.02
_WALL_HISTORY = 3000  # frames of push times kept (60 s): enough for any utterance


def as_streaming(
    asr: StreamingAsr | AsrEngine, make_endpointer: Callable[[], Any] | None = None
) -> StreamingAsr:
    """Transitional: an utterance engine given directly is wrapped in a StreamAdapter (one per
    session, so partials are not coordinated across calls). Pass one shared stream engine."""
    if hasattr(asr, "stream"):
        return asr  # type: ignore[return-value]
    from speech.asr.adapter import StreamAdapter

    return StreamAdapter(asr, make_endpointer)


@dataclass(slots=True)
class TurnRecord:
    speaker: str  # "robot" | "callee"
    text: str
    intent: str | None = None
    confidence: float | None = None
    latency_ms: float | None = None  # callee turns: end of speech -> reply audio queued
    interrupted: bool | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class SessionResult:
    answered: bool
    end: Progress | None  # the final call-progress event (SIP code, reason, who hung up)
    outcome: str | None  # qualified, callback, dnc, ... (None when never answered)
    grade: str | None
    slots: dict[str, Any]
    final_state: str
    turns: list[TurnRecord]
    answered_at: float | None = None  # time.time()
    ended_at: float | None = None


@dataclass(frozen=True, slots=True)
class _Continued:
    """A callee turn that continues the previous one (``said`` carries the joined text)."""

    said: UserSaid


@dataclass(slots=True)
class _Playback:
    say_id: int
    interruptible: bool
    audio_ms: int
    interrupted: bool = False
    turn: TurnRecord | None = None


class CallSession:
    def __init__(
        self,
        *,
        call: CallHandle,
        script: Script,
        asr: StreamingAsr | AsrEngine,
        nlu: IntentClassifier,
        prompts: PromptSource,
        make_endpointer: Callable[[], Any] | None = None,
        end_silence_ms: int | None = None,
        no_input_timeout_s: float = 8.0,
        max_call_s: float = 180.0,
        asr_prompt: str | None = None,
        asr_language: str | None = None,
        context: Mapping[str, Any] | None = None,
        continuation_s: float = 1.0,
    ) -> None:
        """`asr` is the shared stream engine; `make_endpointer` and `end_silence_ms` are only
        read for an utterance engine given directly (see ``as_streaming``)."""
        self.call = call
        self.script = script
        self._asr = as_streaming(asr, make_endpointer)
        self._nlu = nlu
        self._prompts = prompts
        self._no_input_s = no_input_timeout_s
        self._max_call_s = max_call_s
        self._asr_prompt = asr_prompt
        self._asr_language = asr_language
        self._context = dict(context or {})
        self._continuation_s = continuation_s
        self._last_heard: tuple[float, str] | None = None  # (end_t, text) of the last turn
        self._undo: DialogState | None = None  # state before the last turn, while undoable
        self._inbox: asyncio.Queue[Event | _Continued] = asyncio.Queue()
        self._finals: asyncio.Queue[tuple[Final, float]] = asyncio.Queue()
        self._push_wall: deque[float] = deque(maxlen=_WALL_HISTORY)
        self._frames_pushed = 0
        self._endpoints: dict[float, float] = {}  # SpeechEnded.t -> wall time of the decision
        self._partials: list[Partial] = []
        self._state = DialogState()
        self._playing: _Playback | None = None
        self._no_input: asyncio.TimerHandle | None = None
        self._pending_reply: TurnRecord | None = None  # callee turn awaiting its reply audio
        self._pending_reply_t = 0.0
        self._finish: Finish | None = None
        self._end: Progress | None = None
        self.turns: list[TurnRecord] = []

    def _name(self, role: str) -> str:
        return f"call[{self.call.call_id}].{role}"

    async def run(self) -> SessionResult:
        events = aiter(self.call.events())
        answered_at = await self._wait_answered(events)
        if answered_at is None:
            return self._result(False, None)
        try:
            async with asyncio.timeout(self._max_call_s):
                await self._converse(events)
        except TimeoutError:
            log.warning("call exceeded max duration; hanging up", extra={"call": self.call.call_id})
            await self.call.hangup()
        finally:
            if self._no_input:
                self._no_input.cancel()
        if self._end is None:
            self._end = await self._wait_ended(events)
        return self._result(True, answered_at)

    async def _wait_answered(self, events: Any) -> float | None:
        async for ev in events:
            if isinstance(ev, Progress):
                if ev.state is CallState.ANSWERED:
                    return time.time()
                if ev.state is CallState.ENDED:
                    self._end = ev
                    return None
        return None

    async def _wait_ended(self, events: Any) -> Progress | None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                async for ev in events:
                    if isinstance(ev, Progress) and ev.state is CallState.ENDED:
                        return ev
        return self.call.ended

    async def _converse(self, events: Any) -> None:
        self._inbox.put_nowait(Answered())
        stream = self._asr.stream(prompt=self._asr_prompt, language=self._asr_language)
        try:
            async with asyncio.TaskGroup() as tg:
                others = [
                    tg.create_task(self._pump_events(events), name=self._name("events")),
                    tg.create_task(self._listen(stream), name=self._name("listen")),
                    tg.create_task(self._recognize(stream), name=self._name("asr")),
                    tg.create_task(self._understand(), name=self._name("nlu")),
                ]
                try:
                    await self._drive()
                finally:
                    for task in others:
                        task.cancel()
        finally:
            await stream.aclose()

    # ---- events: progress and playout --------------------------------------------------

    async def _pump_events(self, events: Any) -> None:
        async for ev in events:
            self._on_call_event(ev)
            if isinstance(ev, Progress) and ev.state is CallState.ENDED:
                return

    def _on_call_event(self, ev: CallEvent) -> None:
        pb = self._playing
        if isinstance(ev, PlayoutMark) and pb and ev.name == f"say{pb.say_id}":
            self._playback_done(pb)
        elif isinstance(ev, PlayoutCleared) and pb:
            pb.interrupted = True
            if pb.turn is not None:
                pb.turn.interrupted = True
                pb.turn.detail["heard_ms"] = max(0, pb.audio_ms - ev.dropped_ms)
            self._playback_done(pb)
        elif isinstance(ev, Progress) and ev.state is CallState.ENDED:
            self._end = ev
            self._inbox.put_nowait(RemoteHangup())

    def _playback_done(self, pb: _Playback) -> None:
        self._playing = None
        self._inbox.put_nowait(PlaybackFinished(pb.say_id, pb.interrupted))
        if not pb.interrupted and not self._state.ending:
            self._arm_no_input()

    def _arm_no_input(self) -> None:
        if self._no_input:
            self._no_input.cancel()
        loop = asyncio.get_running_loop()
        self._no_input = loop.call_later(self._no_input_s, self._inbox.put_nowait, NoInput())

    # ---- listen: frames -> recognizer stream -------------------------------------------

    async def _listen(self, stream: RecognizeStream) -> None:
        async for frame in self.call.audio():
            if len(frame) != FRAME_BYTES:
                continue
            self._push_wall.append(time.monotonic())
            self._frames_pushed += 1
            stream.push(frame)
        stream.end_input()

    def _wall_at(self, t: float) -> float:
        """Wall (monotonic) time at which stream time `t` had been pushed."""
        index = max(0, round(t / _FRAME_S) - 1) - (self._frames_pushed - len(self._push_wall))
        if 0 <= index < len(self._push_wall):
            return self._push_wall[index]
        return time.monotonic()

    async def _recognize(self, stream: RecognizeStream) -> None:
        try:
            async for ev in stream:
                if isinstance(ev, SpeechStarted):
                    self._on_speech_start()
                elif isinstance(ev, Partial):
                    self._partials.append(ev)
                elif isinstance(ev, SpeechEnded):
                    self._endpoints[ev.t] = time.monotonic()
                elif isinstance(ev, Final):
                    self._finals.put_nowait((ev, time.monotonic()))
        except AsrStreamError:
            log.warning(
                "recognizer failed; no more speech input", extra={"call": self.call.call_id}
            )

    def _on_speech_start(self) -> None:
        if self._no_input:
            self._no_input.cancel()
            self._no_input = None
        pb = self._playing
        if pb and pb.interruptible and not pb.interrupted:
            pb.interrupted = True  # PlayoutCleared will report how much was heard
            self.call.clear_audio()

    # ---- nlu: finals -> intents ----------------------------------------------------------

    def _take_partials(self, end_t: float) -> list[list[Any]]:
        mine = [p for p in self._partials if p.t <= end_t + 1e-6]
        self._partials = [p for p in self._partials if p.t > end_t + 1e-6]
        return [[round(p.t, 2), p.text] for p in mine]

    async def _understand(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            final, t_asr = await self._finals.get()
            partials = self._take_partials(final.end_t)
            t_end = self._wall_at(final.end_t)
            t_endpoint = self._endpoints.pop(final.end_t, t_asr)
            if not final.text.strip():
                if self._playing is None and not self._state.ending:
                    self._arm_no_input()
                continue
            heard = final.text
            previous = self._last_heard
            continues = (
                previous is not None
                and self._undo is not None
                and final.start_t - previous[0] <= self._continuation_s
            )
            if continues and previous is not None:
                heard = f"{previous[1]}，{final.text}"
            self._last_heard = (final.end_t, heard)
            context = {**self._context, "state": self._state.node}
            # dialect words -> Mandarin before NLU (only entries safe in Mandarin unless the
            # lead's dialect is known, e.g. asr_language "yue")
            dialect = self._asr_language if self._asr_language in DIALECTS else None
            text = normalize_dialect(heard, dialect)
            res = await loop.run_in_executor(None, self._nlu.classify, text, context)
            t_nlu = time.monotonic()
            turn = TurnRecord(
                speaker="callee",
                text=final.text,
                intent=res.intent,
                confidence=round(res.confidence, 3),
                detail={
                    "endpoint_ms": round((t_endpoint - t_end) * 1000, 1),
                    "asr_ms": round((t_asr - t_endpoint) * 1000, 1),  # after the endpoint
                    "decode_ms": final.decode_ms,
                    "nlu_ms": round((t_nlu - t_asr) * 1000, 1),
                    "audio_s": round(final.end_t - final.start_t, 2),
                    "asr_confidence": round(final.confidence, 3),
                    "capped": final.capped,
                    "partials": partials,
                    "slots": res.slots,
                },
            )
            if continues and previous is not None:
                turn.detail["continues"] = previous[1]  # intent is of the joined text
            self.turns.append(turn)
            self._pending_reply, self._pending_reply_t = turn, t_end
            said = UserSaid(res.intent, res.confidence, heard, dict(res.slots))
            self._inbox.put_nowait(_Continued(said) if continues else said)

    # ---- drive: the state machine and its actions --------------------------------------

    async def _drive(self) -> None:
        while True:
            item = await self._inbox.get()
            if isinstance(item, _Continued):
                if self._undo is not None:  # still undoable: the first part never happened
                    self._state = replace(
                        self._undo, say_seq=self._state.say_seq, speaking=self._state.speaking
                    )
                event: Event = item.said
            else:
                event = item
            before = self._state
            self._state, actions = step(self.script, self._state, event)
            self._track_undo(event, before, actions)
            if isinstance(event, UserSaid) and not any(isinstance(a, Say) for a in actions):
                self._pending_reply = None  # nothing said in reply: no turn latency
            for action in actions:
                if isinstance(action, Say):
                    await self._say(action)
                elif isinstance(action, Finish):
                    self._finish = action
                elif isinstance(action, Hangup):
                    await self.call.hangup()
            if self._state.ended:
                return

    def _track_undo(self, event: Event, before: DialogState, actions: list[Any]) -> None:
        """A callee turn stays undoable while its reply is only interruptible speech that has
        not played to its end."""
        if isinstance(event, UserSaid):
            speech_only = all(isinstance(a, Say) and a.interruptible for a in actions)
            self._undo = before if actions and speech_only else None
        elif isinstance(event, NoInput | RemoteHangup) or (
            isinstance(event, PlaybackFinished) and not event.interrupted
        ):
            self._undo = None

    async def _say(self, action: Say) -> None:
        t0 = time.monotonic()
        pcm = await self._prompts.get(action.text)
        if self.call.ended is not None:
            return
        turn = TurnRecord(speaker="robot", text=action.text, interrupted=False)
        turn.detail["tts_ms"] = round((time.monotonic() - t0) * 1000, 1)
        self.turns.append(turn)
        self._playing = _Playback(
            action.say_id, action.interruptible, len(pcm) * 1000 // 16000, turn=turn
        )
        self.call.send_audio(pcm)
        self.call.mark(f"say{action.say_id}")
        if self._pending_reply is not None:
            reply = self._pending_reply
            reply.latency_ms = round((time.monotonic() - self._pending_reply_t) * 1000, 1)
            self._pending_reply = None

    def _result(self, answered: bool, answered_at: float | None) -> SessionResult:
        finish = self._finish
        return SessionResult(
            answered=answered,
            end=self._end,
            outcome=finish.outcome if finish else None,
            grade=finish.grade if finish else None,
            slots=dict(finish.slots) if finish else {},
            final_state=self._state.node,
            turns=self.turns,
            answered_at=answered_at,
            ended_at=time.time(),
        )
