"""The dialogue state machine: pure `step(script, state, event) -> (state, actions)`.

No awaits, no I/O, no clocks: every path of a script is table-tested without audio.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

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
class NoInput:
    """The callee said nothing usable within the timeout after the robot finished."""


@dataclass(frozen=True, slots=True)
class PlaybackFinished:
    say_id: int
    interrupted: bool = False


@dataclass(frozen=True, slots=True)
class RemoteHangup:
    """The line is gone (callee hung up, or the worker died)."""


Event = Answered | UserSaid | NoInput | PlaybackFinished | RemoteHangup

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

    outcome: str
    grade: str | None
    slots: dict[str, Any]


Action = Say | Hangup | Finish

# ---- state -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallState:
    node: str = ""  # current script state; "" before the call is answered
    turns: int = 0  # callee turns heard
    retries: int = 0  # unusable answers in a row
    say_seq: int = 0
    speaking: int | None = None  # say_id being played
    ending: bool = False  # an ending state was entered: hang up after its line
    ended: bool = False
    outcome: str | None = None
    slots: dict[str, Any] = field(default_factory=dict)


def _say(state: CallState, text: str, interruptible: bool) -> tuple[CallState, Say]:
    sid = state.say_seq + 1
    return replace(state, say_seq=sid, speaking=sid), Say(sid, text, interruptible)


def _enter(script: Script, state: CallState, name: str) -> tuple[CallState, list[Action]]:
    st = script.states[name]
    state = replace(state, node=name, retries=0)
    actions: list[Action] = []
    if st.end is not None:
        state = replace(state, ending=True, outcome=st.end)
        actions.append(Finish(st.end, st.grade, dict(state.slots)))
    state, say = _say(state, st.say, st.interruptible)
    actions.append(say)
    return state, actions


def _unusable(script: Script, state: CallState) -> tuple[CallState, list[Action]]:
    if state.retries >= script.max_retries:
        return _enter(script, state, script.give_up)
    state = replace(state, retries=state.retries + 1)
    state, say = _say(state, script.reprompt, True)
    return state, [say]


def step(script: Script, state: CallState, event: Event) -> tuple[CallState, list[Action]]:
    if state.ended:
        return state, []
    match event:
        case Answered():
            if state.node:
                return state, []
            return _enter(script, state, script.start)
        case RemoteHangup():
            actions: list[Action] = []
            if state.outcome is None:
                actions.append(Finish("hung_up", None, dict(state.slots)))
                state = replace(state, outcome="hung_up")
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
    raise TypeError(f"unknown event {event!r}")
