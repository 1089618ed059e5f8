"""The dialogue state machine: pure `step(script, state, event) -> (state, actions)`.

No awaits, no I/O, no clocks: every path of a script is table-tested without audio.

Continuations are the machine's own business: a callee turn whose reply is only interruptible
speech stays *undoable* (the state before it is kept in ``DialogState.undo``) until that reply
plays to its end, the callee is silent, or the line drops. ``UserContinued(said)`` then means
"the last turn and this one are one turn": the machine returns to the state before the last
turn and steps once on ``said`` (the joined text). When the last turn is no longer undoable it
is an ordinary ``UserSaid``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from core.vocab import Grade, Outcome

from .script import Script

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


def _heard(
    script: Script, state: DialogState, intent: str, slots: dict[str, Any]
) -> tuple[DialogState, list[Action]]:
    if state.ending or not state.node:
        return state, []
    state = replace(state, turns=state.turns + 1, slots={**state.slots, **slots})
    if state.turns > script.max_turns:
        return _enter(script, state, script.give_up)
    current = script.states[state.node]
    handler = script.handler(current, intent)
    if handler is None:
        return _unusable(script, state)
    if handler.goto:
        return _enter(script, state, handler.goto)
    text = handler.say if handler.say else current.say
    state, say = _say(replace(state, retries=0), text, current.interruptible)
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
        case UserSaid(intent=intent, slots=slots):
            return _heard(script, state, intent, slots)
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
