"""CallSession: one live call wired through a recognizer stream -> NLU -> state machine -> TTS.

Tasks (one TaskGroup per call, all named `call[<id>].<role>`):
  events   call progress + playout reports -> the playing line / machine events
  listen   callee frames -> asr_stream.push(frame)   (sync, never blocks)
  asr      stream events: speech start while the robot talks -> barge-in (a direct call on the
           line's ``Playback`` handle); partials are kept for the turn record; finals -> nlu
  nlu      final transcript -> intent -> UserSaid / UserContinued   (inference off the loop);
           the NLU's context names the intents the current state expects and the n-best
  drive    machine events -> step() -> actions (say, hang up, finish); a callee turn's record
           says whether the machine acted on it, confirmed it or asked again
  say<N>   one robot line's audio, sent as it is synthesised (``callflow.playback``)

Continuations: a callee who goes on within ``continuation_s`` after a turn the machine still
holds as undoable continues that turn (``callflow.continuation``): the NLU hears the joined
text and the machine gets ``UserContinued``, which it resolves itself.

Turn timing lives in ``callflow.timing``, the records in ``callflow.results``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from typing import Any

from nlu.base import IntentClassifier
from speech.asr.base import (
    AsrStreamError,
    Final,
    Partial,
    RecognizeStream,
    SpeechEnded,
    SpeechStarted,
    StreamingAsr,
)
from speech.tts.base import PromptSource
from telephony.base import (
    FRAME_BYTES,
    CallEvent,
    CallHandle,
    CallState,
    PlayoutCleared,
    PlayoutMark,
    Progress,
)

from .continuation import TurnJoiner
from .machine import (
    Answered,
    DialogState,
    Event,
    Finish,
    Hangup,
    NoInput,
    PlaybackFinished,
    RemoteHangup,
    Say,
    UserContinued,
    UserSaid,
    step,
)
from .playback import Playback
from .progress import wait_answered, wait_ended
from .results import (
    OutcomeHook,
    PartialLog,
    SessionResult,
    TurnRecord,
    callee_turn,
    handled_turn,
)
from .script import Script
from .timing import Countdown, TurnClock, TurnTimes

__all__ = ["CallSession", "OutcomeHook", "SessionResult", "TurnRecord"]

log = logging.getLogger(__name__)


class CallSession:
    def __init__(
        self,
        *,
        call: CallHandle,
        script: Script,
        asr: StreamingAsr,
        nlu: IntentClassifier,
        prompts: PromptSource,
        no_input_timeout_s: float = 8.0,
        max_call_s: float = 180.0,
        asr_prompt: str | None = None,
        asr_language: str | None = None,
        context: Mapping[str, Any] | None = None,
        continuation_s: float = 1.0,
        on_outcome: OutcomeHook | None = None,
    ) -> None:
        """`asr` is the node's shared stream engine (one ``stream()`` per call); `asr_language`
        is the lead's language or dialect, also handed to the NLU as ``context["dialect"]``.
        `on_outcome` (also settable as an attribute before `run`) hears each ``Finish`` as
        soon as the machine emits it, before the goodbye line is spoken."""
        self.call = call
        self.script = script
        self._asr = asr
        self._nlu = nlu
        self._prompts = prompts
        self._max_call_s = max_call_s
        self._asr_prompt = asr_prompt
        self._asr_language = asr_language
        self._context = dict(context or {})
        # always set on the call path: None (dialect unknown) still maps the safe dialect words
        self._context["dialect"] = asr_language
        self._joiner = TurnJoiner(continuation_s)
        self._inbox: asyncio.Queue[Event] = asyncio.Queue()
        self._finals: asyncio.Queue[tuple[Final, TurnTimes]] = asyncio.Queue()
        self._clock = TurnClock()
        self._partials = PartialLog()
        self._state = DialogState()
        self._playing: Playback | None = None
        self._no_input = Countdown(no_input_timeout_s, lambda: self._inbox.put_nowait(NoInput()))
        self._finish: Finish | None = None
        self._end: Progress | None = None
        self.turns: list[TurnRecord] = []
        self._judged: deque[TurnRecord] = deque()  # callee turns awaiting the machine's step
        self.on_outcome = on_outcome

    def _name(self, role: str) -> str:
        return f"call[{self.call.call_id}].{role}"

    async def run(self) -> SessionResult:
        events = aiter(self.call.events())
        progress = await wait_answered(events)
        if progress is None or progress.state is not CallState.ANSWERED:
            self._end = progress
            return self._result(None)
        answered_at = time.time()
        try:
            async with asyncio.timeout(self._max_call_s):
                await self._converse(events)
        except TimeoutError:
            log.warning("call exceeded max duration; hanging up", extra={"call": self.call.call_id})
            await self.call.hangup()
        finally:
            self._no_input.cancel()
        if self._end is None:
            self._end = await wait_ended(events, self.call)
        return self._result(answered_at)

    def _result(self, answered_at: float | None) -> SessionResult:
        end, node = self._end, self._state.node
        return SessionResult.of(
            self._finish, end=end, final_state=node, turns=self.turns, answered_at=answered_at
        )

    async def _converse(self, events: AsyncIterator[CallEvent]) -> None:
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
                    await self._drive(tg)
                finally:
                    for task in others:
                        task.cancel()
        finally:
            await stream.aclose()

    # ---- events: progress and playout ------------------------------------------------

    async def _pump_events(self, events: AsyncIterator[CallEvent]) -> None:
        async for ev in events:
            if isinstance(ev, PlayoutMark | PlayoutCleared) and self._playing is not None:
                self._playing.on_playout(ev)
            elif isinstance(ev, Progress) and ev.state is CallState.ENDED:
                self._end = ev
                self._inbox.put_nowait(RemoteHangup())
                return

    def _playback_started(self, pb: Playback) -> None:
        if pb.turn is not None:
            self.turns.append(pb.turn)
        self._clock.reply_queued()

    def _playback_finished(self, pb: Playback) -> None:
        if pb is not self._playing:
            return
        self._playing = None
        self._inbox.put_nowait(PlaybackFinished(pb.say_id, pb.interrupted))
        if not pb.interrupted and not self._state.ending:
            self._no_input.arm()

    # ---- listen and recognize --------------------------------------------------------

    async def _listen(self, stream: RecognizeStream) -> None:
        async for frame in self.call.audio():
            if len(frame) == FRAME_BYTES:
                self._clock.frame_pushed()
                stream.push(frame)
        stream.end_input()

    async def _recognize(self, stream: RecognizeStream) -> None:
        try:
            async for ev in stream:
                if isinstance(ev, SpeechStarted):
                    self._no_input.cancel()
                    if self._playing is not None:
                        self._playing.interrupt()  # PlayoutCleared says how much was heard
                elif isinstance(ev, Partial):
                    self._partials.add(ev)
                elif isinstance(ev, SpeechEnded):
                    self._clock.speech_ended(ev.t)
                elif isinstance(ev, Final):
                    self._finals.put_nowait((ev, self._clock.final(ev.end_t)))
        except AsrStreamError:
            log.warning(
                "recognizer failed; no more speech input", extra={"call": self.call.call_id}
            )

    # ---- nlu: finals -> intents ------------------------------------------------------

    async def _understand(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            final, times = await self._finals.get()
            partials = self._partials.take(final.end_t)
            if not final.text.strip():
                if self._playing is None and not self._state.ending:
                    self._no_input.arm()
                continue
            heard = self._joiner.hear(
                final.text, final.start_t, final.end_t, undoable=self._state.undo is not None
            )
            context = self._nlu_context(final, joined=heard.continues is not None)
            res = await loop.run_in_executor(None, self._nlu.classify, heard.text, context)
            turn = callee_turn(final, res, times, time.monotonic(), partials)
            if heard.continues is not None:
                turn.detail["continues"] = heard.continues  # intent is of the joined text
            self.turns.append(turn)
            self._judged.append(turn)
            self._clock.await_reply(turn, times.speech_end)
            margin = getattr(res, "margin", None)  # nlu.base.IntentResult.margin, when known
            said = UserSaid(res.intent, res.confidence, heard.text, dict(res.slots), margin)
            self._inbox.put_nowait(said if heard.continues is None else UserContinued(said))

    def _nlu_context(self, final: Final, *, joined: bool) -> dict[str, Any]:
        """The NLU's context for one turn: the call's own (dialect, ...), the state, the intents
        that state handles (``expected``: a prior, never a filter; yes and no first while a
        confirmation is pending) and the recognizer's n-best
        (``alternatives``; none for a joined continuation, whose text no hypothesis covers)."""
        node = self._state.node
        state = self.script.states.get(node)
        expected = self.script.expected(state) if state is not None else ()
        pending = self._state.pending
        if pending is not None:  # a confirmation question is waiting for its yes or no
            expected = tuple(dict.fromkeys(("affirm", "deny", pending.intent, *expected)))
        alternatives = () if joined else tuple(getattr(final, "alternatives", ()))
        return {
            **self._context,
            "state": node,
            "expected": expected,
            "alternatives": alternatives,
        }

    # ---- drive: the state machine and its actions ------------------------------------

    async def _drive(self, tg: asyncio.TaskGroup) -> None:
        while not self._state.ended:
            event = await self._inbox.get()
            self._state, actions = step(self.script, self._state, event)
            if isinstance(event, UserSaid | UserContinued) and self._judged:
                handled_turn(self._judged.popleft(), self._state.handled)
            if isinstance(event, UserSaid | UserContinued) and not any(
                isinstance(a, Say) for a in actions
            ):
                self._clock.no_reply()
            for action in actions:
                if isinstance(action, Say):
                    await self._say(action, tg)
                elif isinstance(action, Finish):
                    self._finish = action
                    self._tell_outcome(action)
                elif isinstance(action, Hangup):
                    await self.call.hangup()

    def _tell_outcome(self, finish: Finish) -> None:
        """Hand the outcome to `on_outcome` at once; a failing hook never ends the call."""
        if self.on_outcome is None:
            return
        try:
            self.on_outcome(finish.outcome, finish.grade, dict(finish.slots))
        except Exception as exc:  # the type only: a message could carry what was said
            log.warning(
                "the outcome hook failed: %s", type(exc).__name__, extra={"call": self.call.call_id}
            )

    async def _say(self, action: Say, tg: asyncio.TaskGroup) -> None:
        pb = Playback(
            self.call,
            action,
            on_started=self._playback_started,
            on_finished=self._playback_finished,
        )
        self._playing = pb
        pb.start(tg, self._prompts, name=self._name(f"say{action.say_id}"))
        await pb.wait_until_sent()
