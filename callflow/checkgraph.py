"""The state graph of a parsed script, for ``script check`` (``callflow.check``).

Two questions, both plain breadth-first searches over a few dozen states:

- *reachable*: which states can a call enter from ``start``? Through handlers (a state's own,
  ``global``, ``default``, every branch of a ``when:`` list, the intents DTMF keys stand for),
  ``skip_to``, ``transfer.failed`` when anything transfers, and ``give_up`` from any asking
  state (unusable answers, ``max_turns``).
- *exit*: from which states does some authored handler path lead to an ending (a state with
  ``end:``, or a transfer a person answers)? Here ``give_up`` does not count: a set of states
  whose only way out is the robot giving up is a loop without exit, a script bug.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Literal

from .script import Handler, Script, State

LineOf = Callable[..., int]  # the line of a place: ("states", name, "say") -> 12
Level = Literal["error", "warning"]


def _handlers(script: Script, state: State) -> list[Handler]:
    """Every handler that can fire in `state` (its own, the global ones it does not override,
    its default)."""
    out = list(state.on.values())
    out.extend(h for intent, h in script.global_on.items() if intent not in state.on)
    if state.default is not None:
        out.append(state.default)
    return [each for h in out for each in h.flat()]  # every branch of a when: list


def authored_edges(script: Script) -> dict[str, set[str]]:
    """State -> the states its handlers lead to (an ending state leads nowhere)."""
    edges: dict[str, set[str]] = {name: set() for name in script.states}
    for name, state in script.states.items():
        if state.skip_to:  # skip_if: entering it may go straight on
            edges[name].add(state.skip_to)
        if state.end is not None:
            continue
        for h in _handlers(script, state):
            if h.goto:
                edges[name].add(h.goto)
            if h.transfer and script.transfer_failed:
                edges[name].add(script.transfer_failed)
    return edges


def _exits(script: Script) -> set[str]:
    """States that end the call by themselves: endings, and states that transfer."""
    out = set()
    for name, state in script.states.items():
        if state.end is not None or any(h.transfer for h in _handlers(script, state)):
            out.add(name)
    return out


def _search(starts: Iterable[str], edges: Mapping[str, set[str]]) -> set[str]:
    seen = set(starts)
    todo = deque(seen)
    while todo:
        for nxt in edges.get(todo.popleft(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def reachable(script: Script) -> set[str]:
    """States a call can enter (give_up from any asking state included)."""
    edges = authored_edges(script)
    for name, state in script.states.items():
        if state.end is None and script.give_up in script.states:
            edges[name].add(script.give_up)
    return _search([script.start], edges)


def trapped(script: Script) -> set[str]:
    """States from which no authored path leads to an ending (only give_up ends the call)."""
    back: dict[str, set[str]] = {name: set() for name in script.states}
    for src, targets in authored_edges(script).items():
        for dst in targets:
            back.setdefault(dst, set()).add(src)
    return set(script.states) - _search(_exits(script), back)


def _loops(states: set[str], edges: Mapping[str, set[str]]) -> list[list[str]]:
    """The trapped states grouped by mutual reachability (their strongly connected sets)."""
    out: list[list[str]] = []
    left = set(states)
    for name in sorted(states):
        if name not in left:
            continue
        forward = _search([name], {k: v & states for k, v in edges.items()})
        group = sorted(x for x in forward if name in _search([x], edges))
        left -= set(group)
        out.append(group)
    return out


def graph_problems(script: Script, line_of: LineOf) -> list[tuple[int, Level, str]]:
    """(line, level, message) for unreachable states and states with no way to an ending."""
    out: list[tuple[int, Level, str]] = []
    seen = reachable(script)
    for name in script.states:
        if name not in seen:
            out.append(
                (
                    line_of("states", name),
                    "warning",
                    f"unreachable state {name!r}: no path from start {script.start!r} leads to it",
                )
            )
    stuck = trapped(script) & seen
    for group in _loops(stuck, authored_edges(script)):
        where = line_of("states", group[0])
        if len(group) > 1:
            cycle = " -> ".join([*group, group[0]])
            message = f"loop without exit: {cycle}; no handler leads out to an ending state"
        else:
            message = f"no exit from state {group[0]!r}: no handler leads to an ending state"
        out.append((where, "error", message + " (only give_up would end the call)"))
    return out
