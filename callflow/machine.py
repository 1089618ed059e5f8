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
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from core.vocab import Grade, Outcome

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


Event = Answered | UserSaid | UserContinued | NoInput | PlaybackFinished | RemoteHangup

# ---- actions (what to do) --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Say:
    say_id: int
    text: str
    interruptible: bool = True


@dataclass(frozen=True, slots=True)
class Hangup:
    pass


@dataclass(frozen=True, slots=True)
class Finish:
    """The conversation's outcome is known (emitted once, before the goodbye is played)."""

    outcome: Outcome
    grade: Grade | None
    slots: dict[str, Any]


Action = Say | Hangup | Finish

# ---- state -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pending:
    """An intent the robot asked the callee to confirm, with the slots heard with it."""

    intent: str
    slots: dict[str, Any] = field(default_factory=dict)


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


def _say(state: DialogState, text: str, interruptible: bool) -> tuple[DialogState, Say]:
    sid = state.say_seq + 1
    return replace(state, say_seq=sid, speaking=sid), Say(sid, text, interruptible)


def _enter(script: Script, state: DialogState, name: str) -> tuple[DialogState, list[Action]]:
    st = script.states[name]
    state = replace(state, node=name, retries=0)
    actions: list[Action] = []
    if st.end is not None:
        state = replace(state, ending=True, outcome=st.end)
        actions.append(Finish(st.end, st.grade, dict(state.slots)))
    state, say = _say(state, st.say, st.interruptible)
    actions.append(say)
    return state, actions


def _unusable(script: Script, state: DialogState) -> tuple[DialogState, list[Action]]:
    if state.retries >= script.max_retries:
        return _enter(script, state, script.give_up)
    state = replace(state, retries=state.retries + 1)
    state, say = _say(state, script.reprompt, True)
    return state, [say]


def _heard(script: Script, state: DialogState, said: UserSaid) -> tuple[DialogState, list[Action]]:
    """One callee turn: judge the evidence, then act, confirm or ask again (module docstring)."""
    if state.ending or not state.node:
        return state, []
    decision = judge(
        said.intent, said.confidence, margin=said.margin, threshold=script.clarify_below
    )
    pending = state.pending
    if pending is not None and decision != "ask_again":
        state = replace(state, pending=None)
        if said.intent in ("affirm", pending.intent):  # yes, or the same thing again
            return _act(script, state, pending.intent, {**pending.slots, **said.slots}, pending)
        if said.intent == "deny":
            state = _count_turn(state, said.slots, Handled("ask_again", FALLBACK, pending.intent))
            return _unusable(script, state)
        if _handler(script, state, said.intent).repeat and decision == "act":
            return _confirm(script, state, pending.intent, pending.slots)
    if decision == "ask_again":
        return _act(script, state, FALLBACK, said.slots, None, "ask_again")
    if decision == "confirm" and _worth_confirming(script, state, said.intent):
        return _confirm(script, state, said.intent, said.slots)
    return _act(script, state, said.intent, said.slots, None)


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
    return replace(state, turns=state.turns + 1, slots={**state.slots, **slots}, handled=handled)


def _confirm(
    script: Script, state: DialogState, intent: str, slots: dict[str, Any]
) -> tuple[DialogState, list[Action]]:
    """Ask whether the callee meant `intent`; act on it only after their yes."""
    state = _count_turn(state, {}, Handled("confirm", intent))
    if state.turns > script.max_turns:
        return _enter(script, state, script.give_up)
    state = replace(state, pending=Pending(intent, dict(slots)))
    state, say = _say(state, script.confirm[intent], True)
    return state, [say]


def _act(
    script: Script,
    state: DialogState,
    intent: str,
    slots: dict[str, Any],
    answered: Pending | None,
    decision: Decision = "act",
) -> tuple[DialogState, list[Action]]:
    """Take the turn as `intent` (the machine's behaviour before clarification existed)."""
    handled = Handled(decision, intent, answered.intent if answered else None)
    state = _count_turn(state, slots, handled)
    if state.turns > script.max_turns:
        return _enter(script, state, script.give_up)
    current = script.states[state.node]
    handler = script.handler(current, intent)
    if handler is None:
        return _unusable(script, state)
    if handler.goto:
        return _enter(script, replace(state, pending=None), handler.goto)
    text = handler.say if handler.say else current.say
    state, say = _say(replace(state, retries=0, pending=None), text, current.interruptible)
    return state, [say]


def _react(script: Script, state: DialogState, event: Event) -> tuple[DialogState, list[Action]]:
    match event:
        case Answered():
            if state.node:
                return state, []
            return _enter(script, state, script.start)
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
            return state, []
        case NoInput():
            if state.ending or not state.node:
                return state, []
            return _unusable(script, state)
        case UserSaid():
            return _heard(script, replace(state, handled=None), event)
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
    return replace(after, undo=_undo_after(state, event, actions)), actions
