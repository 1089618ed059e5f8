"""The dialogue state machine: pure `step(script, state, event) -> (state, actions)`.

No awaits, no I/O, no clocks: every path of a script is table-tested without audio.

Continuations are the machine's own business: a callee turn whose reply is only interruptible
speech stays *undoable* (the state before it is kept in ``DialogState.undo``) until that reply
plays to its end, the callee is silent, or the line drops. ``UserContinued(said)`` then means
"the last turn and this one are one turn": the machine returns to the state before the last
turn and steps once on ``said`` (the joined text). When the last turn is no longer undoable it
is an ordinary ``UserSaid``.

Clarification (``callflow.clarify``): a reply whose evidence is weak is not acted on as heard.
When ``judge`` says "confirm" and the script has a ``confirm:`` question for the intent (and
acting on it would differ from what an unusable answer does), the machine says that question
and keeps the intent *pending*. The next ``affirm``, or the same intent again ("不需要" to
"您是说不需要，对吗？"), proceeds exactly as if the pending intent had been heard confidently;
``deny`` re-prompts (an unusable answer); ``repeat`` asks the question again; anything else is
handled normally (a new clear intent wins). "ask_again" is the unusable-answer path (the intent
is taken as ``other``). A pending intent lasts until a usable answer. ``DialogState.handled``
says how the last callee turn was taken, for the turn record.

Silence (``callflow.silence``): with a script ``silence:`` section, ``NoInput`` asks whether the
callee is still there (``Say.kind`` "silence") up to ``max`` times in a row, then says goodbye
("silence_goodbye") and ends ``no_response``; any callee turn resets the count. Without it,
silence is an unusable answer (the reprompt), as before.

DTMF and transfer: ``UserPressed(key)`` is the intent the script maps that key to
(``Script.digit_intent``), acted on as heard with certainty; an unmapped key is ignored. A
``{transfer: target}`` handler says the transfer line (not interruptible), then emits
``Transfer(target)``; ``TransferDone`` reports whether the agent answered: yes ends the call
``transferred`` (hanging up unless the robot's line carries the bridged call), no enters the
script's ``transfer.failed`` state. ``{send_dtmf: keys}`` emits ``SendDigits``.

Memory, conditions, personal lines, grading: each callee turn folds its slots, intent and mood
scores into ``DialogState`` (``callflow.memory.remember``); ``DialogState.env()`` is what
``when:`` conditions read (a handler list picks its branch, a state's ``skip_if`` skips it);
every ``Say`` leaves ``step`` rendered from the lead's fields and the slots
(``callflow.personal``; ``Say.personal`` when a value, not a fallback, went in: such a line
is PII and is played without the prompt cache), and every ``Finish`` graded by the script's rules
(``callflow.grading``) and carrying the call's score trajectory.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from core.vocab import Grade, Outcome

from . import grading, memory, personal
from .clarify import FALLBACK, Decision, judge
from .script import Handler, Script

# ---- events (what happened) ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answered:
    """The callee picked up."""


@dataclass(frozen=True, slots=True)
class UserSaid:
    intent: str
    confidence: float
    text: str = ""
    slots: dict[str, Any] = field(default_factory=dict)
    margin: float | None = None  # top score minus the runner-up's, when the NLU says
    # the knowledge file's answer to this turn, looked up before the step (callflow.knowledge)
    answer: str | None = None


@dataclass(frozen=True, slots=True)
class UserContinued:
    """The callee went on after a short pause: `said` (the joined text) replaces the last turn
    when that turn is still undoable (see the module docstring)."""

    said: UserSaid


@dataclass(frozen=True, slots=True)
class NoInput:
    """The callee said nothing usable within the timeout after the robot finished."""


@dataclass(frozen=True, slots=True)
class PlaybackFinished:
    say_id: int
    interrupted: bool = False


@dataclass(frozen=True, slots=True)
class RemoteHangup:
    """The line is gone (callee hung up, or the worker died)."""


@dataclass(frozen=True, slots=True)
class UserPressed:
    """The callee pressed a DTMF key (RFC 4733)."""

    digit: str


@dataclass(frozen=True, slots=True)
class TransferDone:
    """The transfer the machine asked for is over: did the agent answer? `keep_line`: the
    robot's leg now carries the callee and agent (a bridged transfer), so it must stay up."""

    answered: bool
    keep_line: bool = False


Event = (
    Answered
    | UserSaid
    | UserContinued
    | NoInput
    | PlaybackFinished
    | RemoteHangup
    | UserPressed
    | TransferDone
)

# ---- actions (what to do) --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Say:
    say_id: int
    text: str
    interruptible: bool = True
    # parts some of which may not be interrupted (callflow.bargein); () = the whole line
    segments: tuple[tuple[str, bool], ...] = ()
    kind: str = ""  # "silence" | "silence_goodbye" for the silent-callee lines (turn records)
    # a lead field's or slot's own value was said (callflow.personal): PII, played uncached
    personal: bool = False
    personal_parts: tuple[bool, ...] = ()  # the same per part of `segments` (() = unsplit)

    def parts(self) -> tuple[tuple[str, bool], ...]:
        """The line as (text, interruptible) parts, in order."""
        return self.segments or ((self.text, self.interruptible),)

    def part_is_personal(self, index: int) -> bool:
        """Whether part `index` of ``parts()`` carries a lead's or slot's value (never cached);
        the neutral parts of a split line stay cacheable."""
        if self.personal_parts:
            return self.personal_parts[index]
        return self.personal


@dataclass(frozen=True, slots=True)
class Hangup:
    pass


@dataclass(frozen=True, slots=True)
class Finish:
    """The conversation's outcome is known (emitted once, before the goodbye is played)."""

    outcome: Outcome
    grade: Grade | None
    slots: dict[str, Any]
    scores: tuple[Mapping[str, float], ...] = ()  # the mood scores per callee turn


@dataclass(frozen=True, slots=True)
class Transfer:
    """Hand the call to the person behind `target` (a name the deployment maps to a URI);
    answered with `TransferDone`."""

    target: str


@dataclass(frozen=True, slots=True)
class SendDigits:
    """Send DTMF keys to the far end (an IVR)."""

    digits: str


Action = Say | Hangup | Finish | Transfer | SendDigits

# ---- state -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pending:
    """An intent the robot asked the callee to confirm, with the slots heard with it."""

    intent: str
    slots: dict[str, Any] = field(default_factory=dict)
    answer: str | None = None  # the knowledge answer heard with it (UserSaid.answer)


@dataclass(frozen=True, slots=True)
class Handled:
    """How the machine took the last callee turn (recorded with the turn, for reports)."""

    decision: Decision  # act | confirm | ask_again
    intent: str  # acted on, asked about, or "other" when asked again
    answers: str | None = None  # the pending intent this turn answered (affirm or deny)


@dataclass(frozen=True, slots=True)
class DialogState:
    node: str = ""  # current script state; "" before the call is answered
    turns: int = 0  # callee turns heard
    retries: int = 0  # unusable answers in a row
    say_seq: int = 0
    speaking: int | None = None  # say_id being played
    ending: bool = False  # an ending state was entered: hang up after its line
    ended: bool = False
    outcome: Outcome | None = None
    slots: dict[str, Any] = field(default_factory=dict)
    undo: DialogState | None = None  # the state before the last callee turn, while undoable
    pending: Pending | None = None  # asked to confirm, awaiting the callee's yes or no
    handled: Handled | None = None  # how the last callee turn was taken (None: ignored)
    transfer: str | None = None  # the target being transferred to (its line, then the call)
    silences: int = 0  # silence prompts in a row (callflow.silence)
    lead: Mapping[str, str] = field(default_factory=dict)  # callflow.personal.lead_fields
    heard: Mapping[str, int] = field(default_factory=dict)  # intent -> times acted on
    scores: tuple[Mapping[str, float], ...] = ()  # mood scores per callee turn

    def env(self, outcome: str | None = None) -> dict[str, Any]:
        """What a ``when:`` condition reads now (``callflow.memory.environment``)."""
        return memory.environment(
            slots=self.slots,
            heard=self.heard,
            scores=self.scores,
            lead=self.lead,
            turns=self.turns,
            outcome=outcome or self.outcome,
        )


def _say(
    state: DialogState,
    text: str,
    interruptible: bool,
    segments: tuple[tuple[str, bool], ...] = (),
    kind: str = "",
) -> tuple[DialogState, Say]:
    sid = state.say_seq + 1
    say = Say(sid, text, interruptible, segments, kind)
    return replace(state, say_seq=sid, speaking=sid), say


def _silent(script: Script, state: DialogState) -> tuple[DialogState, list[Action]]:
    """No input within the timeout, with a ``silence:`` section: ask whether the callee is
    still there, up to ``max`` times in a row, then say goodbye and end ``no_response``."""
    silence = script.silence
    assert silence is not None
    if state.silences < silence.max:
        state = replace(state, silences=state.silences + 1)
        state, say = _say(state, silence.prompt, True, kind="silence")
        return state, [say]
    state = replace(state, ending=True, outcome=Outcome.NO_RESPONSE)
    finish = Finish(Outcome.NO_RESPONSE, None, dict(state.slots))
    state, say = _say(state, silence.goodbye, False, kind="silence_goodbye")
    return state, [finish, say]


def _skipped(script: Script, state: DialogState, name: str) -> str:
    """The state actually entered: `name`, or where its ``skip_if`` sends the call (never
    asking what the callee already said); a chain of skips is followed, loops cut short."""
    env = state.env()
    for _ in script.states:
        st = script.states[name]
        if st.skip_if is None or st.skip_to is None or not st.skip_if.holds(env):
            break
        name = st.skip_to
    return name


def _enter(script: Script, state: DialogState, name: str) -> tuple[DialogState, list[Action]]:
    name = _skipped(script, state, name)
    st = script.states[name]
    state = replace(state, node=name, retries=0)
    actions: list[Action] = []
    if st.end is not None:
        state = replace(state, ending=True, outcome=st.end)
        actions.append(Finish(st.end, st.grade, dict(state.slots)))
    state, say = _say(state, st.say, st.interruptible, st.segments)
    actions.append(say)
    return state, actions


def _answered(script: Script, state: DialogState) -> tuple[DialogState, list[Action]]:
    """The greeting, after the recording notice when the script has one."""
    if not script.recording_notice:
        return _enter(script, state, script.start)
    state, notice = _say(state, script.recording_notice, False)
    state, actions = _enter(script, state, script.start)
    return state, [notice, *actions]


def _transferred(
    script: Script, state: DialogState, done: TransferDone
) -> tuple[DialogState, list[Action]]:
    """The agent answered (the call ends transferred) or not (``transfer.failed``)."""
    if state.transfer is None or state.ended:
        return state, []
    state = replace(state, transfer=None)
    if not done.answered:
        return _enter(script, state, script.transfer_failed or script.give_up)
    finish = Finish(Outcome.TRANSFERRED, None, dict(state.slots))
    state = replace(state, ended=True, ending=True, outcome=Outcome.TRANSFERRED)
    return state, [finish] if done.keep_line else [finish, Hangup()]


def _unusable(script: Script, state: DialogState) -> tuple[DialogState, list[Action]]:
    if state.retries >= script.max_retries:
        return _enter(script, state, script.give_up)
    state = replace(state, retries=state.retries + 1)
    state, say = _say(state, script.reprompt, True)
    return state, [say]


def _heard(script: Script, state: DialogState, said: UserSaid) -> tuple[DialogState, list[Action]]:
    """One callee turn: judge the evidence, then act, confirm or ask again (module docstring)."""
    if state.ending or state.transfer is not None or not state.node:
        return state, []
    decision = judge(
        said.intent, said.confidence, margin=said.margin, threshold=script.clarify_below
    )
    pending = state.pending
    if pending is not None and decision != "ask_again":
        state = replace(state, pending=None)
        if said.intent in ("affirm", pending.intent):  # yes, or the same thing again
            slots = {**pending.slots, **said.slots}
            answer = said.answer or pending.answer
            return _act(script, state, pending.intent, slots, pending, answer=answer)
        if said.intent == "deny":
            state = _count_turn(state, said.slots, Handled("ask_again", FALLBACK, pending.intent))
            return _unusable(script, state)
        if _handler(script, state, said.intent).repeat and decision == "act":
            return _confirm(script, state, pending.intent, pending.slots, pending.answer)
    if decision == "ask_again":
        return _act(script, state, FALLBACK, said.slots, None, "ask_again")
    if decision == "confirm" and _worth_confirming(script, state, said.intent):
        return _confirm(script, state, said.intent, said.slots, said.answer)
    return _act(script, state, said.intent, said.slots, None, answer=said.answer)


def _handler(script: Script, state: DialogState, intent: str) -> Handler:
    return script.handler(script.states[state.node], intent) or Handler()


def _worth_confirming(script: Script, state: DialogState, intent: str) -> bool:
    """A question exists, and acting on `intent` differs from what an unusable answer does."""
    current = script.states[state.node]
    handler = script.handler(current, intent)
    return (
        intent in script.confirm
        and handler is not None
        and handler != script.handler(current, FALLBACK)
    )


def _count_turn(state: DialogState, slots: dict[str, Any], handled: Handled) -> DialogState:
    acted = handled.intent if handled.decision == "act" else ""
    mood = memory.turn_scores(slots)
    return replace(
        state,
        turns=state.turns + 1,
        slots=memory.remember(state.slots, slots, acted),
        handled=handled,
        heard={**state.heard, acted: state.heard.get(acted, 0) + 1} if acted else state.heard,
        scores=(*state.scores, mood) if mood is not None else state.scores,
    )


def _confirm(
    script: Script,
    state: DialogState,
    intent: str,
    slots: dict[str, Any],
    answer: str | None = None,
) -> tuple[DialogState, list[Action]]:
    """Ask whether the callee meant `intent`; act on it only after their yes."""
    state = _count_turn(state, {}, Handled("confirm", intent))
    if state.turns > script.max_turns:
        return _enter(script, state, script.give_up)
    state = replace(state, pending=Pending(intent, dict(slots), answer))
    state, say = _say(state, script.confirm[intent], True)
    return state, [say]


def _act(
    script: Script,
    state: DialogState,
    intent: str,
    slots: dict[str, Any],
    answered: Pending | None,
    decision: Decision = "act",
    *,
    answer: str | None = None,
) -> tuple[DialogState, list[Action]]:
    """Take the turn as `intent` (the machine's behaviour before clarification existed);
    `answer`: the knowledge file's answer, said by an ``answer: knowledge`` handler."""
    handled = Handled(decision, intent, answered.intent if answered else None)
    state = _count_turn(state, slots, handled)
    if state.turns > script.max_turns:
        return _enter(script, state, script.give_up)
    current = script.states[state.node]
    handler = script.handler(current, intent)
    if handler is not None:  # a handler list: the branch whose ``when:`` holds now
        handler = handler.pick(state.env())
    if handler is None:
        return _unusable(script, state)
    if handler.transfer:
        state = replace(state, retries=0, pending=None, transfer=handler.transfer)
        state, say = _say(state, script.transfer_say, False)
        return state, [say]
    if handler.send_dtmf:
        sent: list[Action] = [SendDigits(handler.send_dtmf)]
        if not handler.goto:
            return replace(state, retries=0, pending=None), sent
        state, actions = _enter(script, replace(state, pending=None), handler.goto)
        return state, sent + actions
    if handler.goto:
        return _enter(script, replace(state, pending=None), handler.goto)
    if handler.answer:  # in place: the knowledge file's answer, else the script's fallback line
        text = answer or handler.fallback or current.say
    else:
        text = handler.say if handler.say else current.say
    parts = current.segments if text == current.say else ()
    state, say = _say(replace(state, retries=0, pending=None), text, current.interruptible, parts)
    return state, [say]


def _react(script: Script, state: DialogState, event: Event) -> tuple[DialogState, list[Action]]:
    match event:
        case Answered():
            if state.node:
                return state, []
            return _answered(script, state)
        case RemoteHangup():
            actions: list[Action] = []
            if state.outcome is None:
                actions.append(Finish(Outcome.HUNG_UP, None, dict(state.slots)))
                state = replace(state, outcome=Outcome.HUNG_UP)
            return replace(state, ended=True, speaking=None), actions
        case PlaybackFinished(say_id=sid):
            if sid != state.speaking:
                return state, []
            state = replace(state, speaking=None)
            if state.ending:
                return replace(state, ended=True), [Hangup()]
            if state.transfer is not None:
                return state, [Transfer(state.transfer)]
            return state, []
        case TransferDone():
            return _transferred(script, state, event)
        case UserPressed(digit=digit):
            intent = script.digit_intent(script.states.get(state.node), digit)
            if intent is None or state.ending or state.transfer is not None or not state.node:
                return state, []
            return _act(script, replace(state, handled=None), intent, {}, None)
        case NoInput():
            if state.ending or state.transfer is not None or not state.node:
                return state, []
            if script.silence is not None:
                return _silent(script, state)
            return _unusable(script, state)
        case UserSaid():
            return _heard(script, replace(state, handled=None, silences=0), event)
    raise TypeError(f"unknown event {event!r}")


def _undo_after(before: DialogState, event: Event, actions: list[Action]) -> DialogState | None:
    """What stays undoable after `event`: a callee turn whose reply is only interruptible
    speech, until that reply plays to its end (or nothing more can be undone)."""
    if isinstance(event, UserSaid):
        speech_only = all(isinstance(a, Say) and a.interruptible for a in actions)
        return replace(before, undo=None) if actions and speech_only else None
    if isinstance(event, NoInput | RemoteHangup) or (
        isinstance(event, PlaybackFinished) and not event.interrupted
    ):
        return None
    return before.undo


def step(script: Script, state: DialogState, event: Event) -> tuple[DialogState, list[Action]]:
    """Apply one event; return the new state and what to do."""
    if state.ended:
        return state, []
    if isinstance(event, UserContinued):
        if state.undo is not None:  # the last turn never happened; its reply is cut short
            state = replace(state.undo, say_seq=state.say_seq, speaking=state.speaking)
        event = event.said
    after, actions = _react(script, state, event)
    actions = [_final(script, after, a) for a in actions]
    return replace(after, undo=_undo_after(state, event, actions)), actions


def _final(script: Script, state: DialogState, action: Action) -> Action:
    """A ``Say`` rendered for this call (lead fields, slots); a ``Finish`` graded by the
    script's rules, with the call's memory and score trajectory."""
    if isinstance(action, Say) and "{" in action.text:

        def fill(text: str) -> tuple[str, bool]:
            return personal.render_marked(
                text, lead=state.lead, slots=state.slots, fallbacks=script.fallbacks
            )

        text, mine = fill(action.text)
        filled = [(fill(t), cut) for t, cut in action.segments]
        return replace(
            action,
            text=text,
            segments=tuple((t, cut) for (t, _), cut in filled),
            personal=mine,
            personal_parts=tuple(p for (_, p), _ in filled),
        )
    if isinstance(action, Finish):
        ruled = grading.grade(script.grading, state.env(action.outcome))
        return replace(action, grade=ruled or action.grade, scores=state.scores)
    return action
