"""CallSession: one live call wired through a recognizer stream -> NLU -> state machine -> TTS.

Tasks (one TaskGroup per call, all named `call[<id>].<role>`):
  events   call progress + playout reports -> the playing line / machine events
  listen   callee frames -> asr_stream.push(frame)   (sync, never blocks)
  asr      stream events: speech start while the robot talks -> barge-in (``callflow.bargein``:
           pause the line at once, a direct call on its ``Playback`` handle; stop it for
           long speech or real words, resume it for a backchannel, which is no turn);
           partials are kept for the turn record; finals -> nlu
  nlu      final transcript -> intent -> UserSaid / UserContinued   (inference off the loop);
           the NLU's context names the intents the current state expects and the n-best
  drive    machine events -> step() -> actions (say, hang up, finish); a callee turn's record
           says whether the machine acted on it, confirmed it or asked again
  say<N>   one robot line's audio, sent as it is synthesised (``callflow.playback``)

Continuations: a callee who goes on within ``continuation_s`` after a turn the machine still
holds as undoable continues that turn (``callflow.continuation``): the NLU hears the joined
text and the machine gets ``UserContinued``, which it resolves itself.

Turn timing lives in ``callflow.timing``, the records in ``callflow.results``. DTMF keys,
sending keys and transfers go through ``callflow.transfer.CallEdge``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from core.vocab import Outcome
from nlu.base import IntentClassifier
from nlu.knowledge.base import Answer, KnowledgeBase
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
    Dtmf,
    PlayoutCleared,
    PlayoutMark,
    PlayoutPaused,
    PlayoutStarted,
    Progress,
    TransferEnded,
)

from . import personal
from .bargein import BargeIn, BargeInPolicy
from .continuation import TurnJoiner
from .gate import Gate, Screening, Watch, screened_end, screening_turn, voicemail_kind
from .knowledge import detail as knowledge_detail
from .knowledge import lookup, wants_answer
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
    SendDigits,
    Transfer,
    UserContinued,
    UserPressed,
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
from .screening import Kind, Verdict
from .script import Script
from .timing import Countdown, TurnClock, TurnTimes
from .transfer import CallEdge, TransferPolicy

__all__ = ["CallSession", "OutcomeHook", "SessionResult", "TurnHook", "TurnRecord"]

TurnHook = Callable[[str, TurnRecord], None]
"""Told each turn with the script state after it, on the event loop (must not block): the
dialer publishes ``call/turn`` for live views."""

log = logging.getLogger(__name__)

MESSAGE_SAY_ID = -1  # the voicemail message's line (no machine step says it)
MESSAGE_MAX_S = 60.0  # the longest a voicemail message is waited out


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
        transfer: TransferPolicy | None = None,
        barge_in: BargeInPolicy | None = None,
        screening: Screening | None = None,
        knowledge: KnowledgeBase | None = None,
        lead: Mapping[str, str] | None = None,
        decoder_hints: bool = True,
    ) -> None:
        """`asr` is the node's shared stream engine (one ``stream()`` per call); `asr_language`
        is the lead's language or dialect, also handed to the NLU as ``context["dialect"]``.
        `on_outcome` (also settable as an attribute before `run`) hears each ``Finish`` as
        soon as the machine emits it, before the goodbye line is spoken. `lead`: the lead's
        fields (``callflow.personal.lead_fields``) its personal lines say. `decoder_hints`
        False: the recognizer decodes with `asr_prompt` only, never a state's ``asr_hints``."""
        self.call = call
        self.script = script
        self._asr = asr
        self._nlu = nlu
        self._knowledge = knowledge  # answers `answer: knowledge` handlers (callflow.knowledge)
        self._prompts = prompts
        self._max_call_s = max_call_s
        self._asr_prompt = asr_prompt
        self._decoder_hints = decoder_hints
        self._asr_language = asr_language
        self._context = dict(context or {})
        # always set on the call path: None (dialect unknown) still maps the safe dialect words
        self._context["dialect"] = asr_language
        self._joiner = TurnJoiner(continuation_s)
        self._inbox: asyncio.Queue[Event] = asyncio.Queue()
        self._finals: asyncio.Queue[tuple[Final, TurnTimes]] = asyncio.Queue()
        self._clock = TurnClock()
        self._partials = PartialLog()
        # the lead's fields for personal lines (callflow.personal; PII: never logged)
        self._state = DialogState(lead=dict(lead or {}))
        self._stream: RecognizeStream | None = None  # its prompt follows the state's asr_hints
        self._playing: Playback | None = None
        self._no_input = Countdown(no_input_timeout_s, lambda: self._inbox.put_nowait(NoInput()))
        self._finish: Finish | None = None
        self._end: Progress | None = None
        self.turns: list[TurnRecord] = []
        self._judged: deque[TurnRecord] = deque()  # callee turns awaiting the machine's step
        self.on_outcome = on_outcome
        self.on_turn: TurnHook | None = None  # set before `run`: hears each turn (live views)
        self._edge = CallEdge(call, transfer)
        self._barge = BargeIn(barge_in or BargeInPolicy())
        self._lines: list[Playback] = []  # robot lines not yet settled, oldest first
        self._screening = screening  # None: the greeting starts at the answer, unscreened
        self.screening: Verdict | None = None  # what the screening heard (callflow.gate)
        self._watch: Watch | None = None  # the first seconds of the conversation, screened
        self._machine: Verdict | None = None  # a machine: the script is over (see _end_machine)
        self._group: asyncio.TaskGroup | None = None
        self._side: list[asyncio.Task[None]] = []

    def _name(self, role: str) -> str:
        return f"call[{self.call.call_id}].{role}"

    async def run(self) -> SessionResult:
        events = aiter(self.call.events())
        gate = self._gate()
        progress = await (wait_answered(events) if gate is None else gate.early(events))
        if progress is None or progress.state is not CallState.ANSWERED:
            if gate is not None:
                await gate.aclose()
            self._end = self._screened_end(progress, gate)
            return self._result(None)
        answered_at = time.time()
        try:
            async with asyncio.timeout(self._max_call_s):
                if not await self._screen(gate):
                    await self._converse(events)  # a person, or a voicemail to leave a message
        except TimeoutError:
            log.warning("call exceeded max duration; hanging up", extra={"call": self.call.call_id})
            await self.call.hangup()
        finally:
            self._no_input.cancel()
        if self._end is None:  # a bridged transfer: the line lasts while callee and agent talk
            wait_s = self._edge.bridge_max_s if self._edge.keep_line else 10.0
            self._end = await wait_ended(events, self.call, wait_s)
        self._end = self._screened_end(self._end, gate)
        return self._result(answered_at)

    # ---- screening: a person or a machine, before a word is said (callflow.gate) ---------

    def _gate(self) -> Gate | None:
        if self._screening is None:
            return None
        return Gate(
            self.call, asr=self._asr, screening=self._screening, language=self._asr_language
        )

    async def _screen(self, gate: Gate | None) -> bool:
        """Screen the first seconds after the answer; True when a machine answered and the
        call was hung up without a word of the script (a voicemail's outcome is voicemail)."""
        if gate is None:
            return False
        try:
            verdict = self.screening = await gate.answered()
        finally:
            await gate.aclose()
        log.info("screened: %s", verdict.kind, extra={"call": self.call.call_id})
        if not verdict.machine:
            self._watch = gate.watch()  # a machine that answered like a person is caught late
            return False
        self.turns.append(screening_turn(verdict, gate.heard))
        if verdict.kind is Kind.VOICEMAIL and self.script.voicemail is not None:
            self._machine = verdict  # the conversation leaves the message (_end_machine)
            self._watch = gate.watch(go_on=True)
            return False
        self._end_as(verdict)
        await self.call.hangup()
        return True

    def _end_as(self, verdict: Verdict) -> None:
        """A machine answered: a voicemail's outcome is voicemail (others have none)."""
        if verdict.kind is Kind.VOICEMAIL:
            self._finish = Finish(Outcome.VOICEMAIL, None, {})
            self._tell_outcome(self._finish)

    def _caught(self, verdict: Verdict) -> None:
        """The watch heard a machine while the robot talked: stop the line, end the call."""
        self.screening = self._machine = verdict
        heard = self._watch.heard if self._watch is not None else []
        self.turns.append(screening_turn(verdict, heard))
        log.info("screened late: %s", verdict.kind, extra={"call": self.call.call_id})
        self._no_input.cancel()
        if self._playing is not None:
            self._playing.interrupt()
        self._start_end_machine(verdict)

    def _watch_hears(self, text: str, *, final: bool) -> None:
        if self._watch is not None and (machine := self._watch.hear(text, final=final)):
            self._caught(machine)

    def _start_end_machine(self, verdict: Verdict) -> None:
        if self._group is not None:
            task = self._group.create_task(self._end_machine(verdict), name=self._name("machine"))
            self._side.append(task)  # cancelled with the conversation (the line is gone)

    async def _end_machine(self, verdict: Verdict) -> None:
        """End a call a machine answered; on a voicemail, the script's message after the
        beep first (``callflow.voicemail``). The dialogue machine's own actions are ignored
        from now on."""
        self._end_as(verdict)
        voicemail = self.script.voicemail
        if verdict.kind is Kind.VOICEMAIL and voicemail is not None and self._watch is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(voicemail.beep_wait_s):
                    await self._watch.greeting_over.wait()
            await self._leave_message(voicemail.leave_message)
        await self.call.hangup()

    async def _leave_message(self, text: str) -> None:
        """Say the voicemail message (rendered for the lead, never cut) and wait it out."""
        line, own = personal.render_marked(
            text, lead=self._state.lead, slots=self._state.slots, fallbacks=self.script.fallbacks
        )
        say = Say(MESSAGE_SAY_ID, line, interruptible=False, kind="voicemail_message", personal=own)
        assert self._group is not None
        if self._playing is not None:
            self._playing.interrupt()
        pb = await self._say(say, self._group)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(MESSAGE_MAX_S):
                await pb.wait_for_playout()

    def _screened_end(self, end: Progress | None, gate: Gate | None) -> Progress | None:
        """The line's end, its disposition refined by what answered: the screening's machine,
        or the announcement in a call the conversation ended as voicemail."""
        if gate is None:
            return end
        if gate.early_verdict is not None:
            self.screening = gate.early_verdict
            self.turns.append(screening_turn(gate.early_verdict, gate.heard))
        verdict = self.screening
        heard_machine = verdict is not None and verdict.machine
        if not heard_machine and self._finish and self._finish.outcome is Outcome.VOICEMAIL:
            said = [t.text for t in self.turns if t.speaker == "callee"]
            verdict = Verdict(voicemail_kind(said), 0.0, "conversation")
        return screened_end(end, verdict)

    def _result(self, answered_at: float | None) -> SessionResult:
        end, node = self._end, self._state.node
        result = SessionResult.of(
            self._finish, end=end, final_state=node, turns=self.turns, answered_at=answered_at
        )
        result.transfer = self._edge.result
        return result

    async def _converse(self, events: AsyncIterator[CallEvent]) -> None:
        self._inbox.put_nowait(Answered())
        stream = self._asr.stream(prompt=self._asr_prompt, language=self._asr_language)
        self._stream = stream
        try:
            async with asyncio.TaskGroup() as tg:
                self._group = tg
                if self._machine is not None:  # a voicemail: its message, then the end
                    self._start_end_machine(self._machine)
                others = [
                    tg.create_task(self._pump_events(events), name=self._name("events")),
                    tg.create_task(self._listen(stream), name=self._name("listen")),
                    tg.create_task(self._recognize(stream), name=self._name("asr")),
                    tg.create_task(self._understand(), name=self._name("nlu")),
                ]
                try:
                    await self._drive(tg)
                finally:
                    for task in [*others, *self._side]:
                        task.cancel()
        finally:
            await stream.aclose()

    # ---- events: progress and playout ------------------------------------------------

    async def _pump_events(self, events: AsyncIterator[CallEvent]) -> None:
        async for ev in events:
            if isinstance(ev, PlayoutMark | PlayoutCleared | PlayoutPaused | PlayoutStarted):
                self._route_playout(ev)
            elif isinstance(ev, Progress) and ev.state is CallState.ENDED:
                self._end = ev
                self._inbox.put_nowait(RemoteHangup())
                return
            elif isinstance(ev, Dtmf | TransferEnded):
                self._edge_event(ev)

    def _edge_event(self, ev: Dtmf | TransferEnded) -> None:
        """A key the script maps cuts the robot's line short, like speech; then the machine."""
        event = self._edge.event(ev)
        node = self.script.states.get(self._state.node)
        if isinstance(event, UserPressed) and self.script.digit_intent(node, event.digit):
            self._no_input.cancel()
            if self._playing is not None:
                self._playing.interrupt()
        self._inbox.put_nowait(event)

    def _route_playout(
        self, ev: PlayoutMark | PlayoutCleared | PlayoutPaused | PlayoutStarted
    ) -> None:
        """A playout report goes to the line it is about (a cut line's report may come after
        the next line started)."""
        for pb in self._lines:
            if pb.expects(ev):
                pb.on_playout(ev)
                return

    def _playback_started(self, pb: Playback) -> None:
        if pb.turn is not None:
            self.turns.append(pb.turn)
            self._tell_turn(pb.turn)
        pb.reply_to = self._clock.reply_queued()

    def _playback_heard(self, pb: Playback) -> None:
        """The reply's first frame went out on RTP: the latency the callee hears."""
        if pb.reply_to is not None and pb.started_t is not None:
            turn, since = pb.reply_to
            detail = getattr(turn, "detail", None)
            if isinstance(detail, dict):
                detail["heard_latency_ms"] = round((pb.started_t - since) * 1000, 1)

    def _playback_finished(self, pb: Playback) -> None:
        if pb in self._lines:
            self._lines.remove(pb)
        self._barge.settled(pb)
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
                if self._watch is not None and (machine := self._watch.push(frame)):
                    self._caught(machine)
        stream.end_input()

    async def _recognize(self, stream: RecognizeStream) -> None:
        try:
            async for ev in stream:
                if isinstance(ev, SpeechStarted):
                    self._no_input.cancel()  # pause the robot now; stop it or not later
                    self._barge.onset(self._playing, ev.t, self._clock.wall_at(ev.t))
                elif isinstance(ev, Partial):
                    self._partials.add(ev)
                    self._watch_hears(ev.text, final=False)
                elif isinstance(ev, SpeechEnded):
                    self._clock.speech_ended(ev.t)
                    self._barge.speech_ended(ev.t)
                elif isinstance(ev, Final):
                    self._watch_hears(ev.text, final=True)
                    if self._machine is not None:
                        continue  # a machine's words are no turn
                    times = self._clock.final(ev.end_t)
                    if self._barge.final(ev, self._playing):  # a backchannel: no turn
                        self._partials.take(ev.end_t)
                    else:
                        self._finals.put_nowait((ev, times))
        except AsrStreamError:
            log.warning(
                "recognizer failed; no more speech input", extra={"call": self.call.call_id}
            )
        finally:
            self._barge.close()

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
            asks = self._knowledge is not None and wants_answer(
                self.script, self._state, res.intent
            )
            answer = None
            if asks:  # an `answer: knowledge` handler: look the answer up before the step
                answer = await loop.run_in_executor(None, self._look_up, res.intent, heard.text)
            turn = callee_turn(final, res, times, time.monotonic(), partials)
            if heard.continues is not None:
                turn.detail["continues"] = heard.continues  # intent is of the joined text
            if asks:
                turn.detail["knowledge"] = knowledge_detail(answer)
            self.turns.append(turn)
            self._judged.append(turn)
            self._clock.await_reply(turn, times.speech_end)
            margin = getattr(res, "margin", None)  # nlu.base.IntentResult.margin, when known
            known = answer.text if answer is not None else None
            said = UserSaid(res.intent, res.confidence, heard.text, dict(res.slots), margin, known)
            self._inbox.put_nowait(said if heard.continues is None else UserContinued(said))

    def _look_up(self, intent: str, text: str) -> Answer | None:
        """The knowledge answer to the callee's question (in an executor: ms of CPU)."""
        context = {"dialect": self._context.get("dialect")}
        return lookup(self._knowledge, self.script, self._state, intent, text, context)

    def _nlu_context(self, final: Final, *, joined: bool) -> dict[str, Any]:
        """The NLU's context for one turn: the call's own (dialect, ...), the state, the intents
        that state handles (``expected``: a prior, never a filter; yes and no first while a
        confirmation is pending), the recognizer's n-best and its confidence in the text
        (``alternatives``, ``asr_confidence``; neither for a joined continuation, whose text no
        one decode covers)."""
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
            "asr_confidence": None if joined else final.confidence,
        }

    # ---- drive: the state machine and its actions ------------------------------------

    async def _drive(self, tg: asyncio.TaskGroup) -> None:
        while not self._state.ended:
            event = await self._inbox.get()
            self._state, actions = step(self.script, self._state, event)
            if self._machine is not None:
                continue  # a machine answered: _end_machine ends the call, not the script
            if self._stream is not None and self._decoder_hints:  # the state's asr_hints
                self._stream.set_prompt(self.script.prompt_for(self._state.node, self._asr_prompt))
            if isinstance(event, UserSaid | UserContinued) and self._judged:
                turn = self._judged.popleft()
                handled_turn(turn, self._state.handled)
                self._tell_turn(turn)
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
                elif isinstance(action, SendDigits | Transfer) and (back := self._edge.act(action)):
                    self._inbox.put_nowait(back)  # a transfer with no target: failed at once

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

    def _tell_turn(self, turn: TurnRecord) -> None:
        """Hand a turn (a robot line queued, a callee turn the machine took) and the state
        after it to `on_turn`; a failing hook never ends the call."""
        if self.on_turn is None:
            return
        try:
            self.on_turn(self._state.node, turn)
        except Exception as exc:
            log.warning(
                "the turn hook failed: %s", type(exc).__name__, extra={"call": self.call.call_id}
            )

    async def _say(self, action: Say, tg: asyncio.TaskGroup) -> Playback:
        if self._playing is not None and self._playing.paused:
            self._playing.interrupt()  # a held line never plays on after a new reply
        pb = Playback(
            self.call,
            action,
            on_started=self._playback_started,
            on_finished=self._playback_finished,
            on_heard=self._playback_heard,
        )
        self._playing = pb
        self._lines.append(pb)
        pb.start(tg, self._prompts, name=self._name(f"say{action.say_id}"))
        await pb.wait_until_sent()
        return pb
