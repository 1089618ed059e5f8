"""Sales scripts (话术) in YAML: states with a line to say and where each intent leads.

A state either *asks* (says its line, then waits for the callee) or *ends* (says its line,
then hangs up with an outcome). `global` handlers apply in every asking state unless the
state has its own handler for that intent. A handler is a target state name, or a mapping:
  {goto: state}          move on
  {say: text}            answer in place and stay (e.g. "who are you?")
  {repeat: true}         say the current line again

An ending state's ``end:`` names a ``core.vocab.Outcome`` and a qualified ending may carry a
``grade:`` (``core.vocab.Grade``: A, B or C); any other value is a ScriptError.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from core.vocab import Grade, Outcome

_V = TypeVar("_V", Outcome, Grade)


class ScriptError(ValueError):
    """A script file that cannot run; the message names the file and the place."""


@dataclass(frozen=True, slots=True)
class Handler:
    goto: str | None = None
    say: str | None = None
    repeat: bool = False


@dataclass(frozen=True, slots=True)
class State:
    name: str
    say: str
    on: Mapping[str, Handler] = field(default_factory=dict)
    default: Handler | None = None  # for intents with no handler ("other" included)
    end: Outcome | None = None  # outcome, for an ending state
    grade: Grade | None = None  # lead grade for qualified endings
    interruptible: bool = True


@dataclass(frozen=True, slots=True)
class Script:
    name: str
    start: str
    states: Mapping[str, State]
    global_on: Mapping[str, Handler]
    reprompt: str  # said when nothing usable was heard
    max_retries: int = 2  # unusable answers in a row before ending with no_response
    max_turns: int = 14
    give_up: str = "end_no_response"
    intents: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # script's own intents
    # replies the script expects, handed to the ASR as a decoding prompt (vocabulary biasing)
    asr_prompt: str | None = None

    def lines(self) -> list[str]:
        """Every fixed line the script can say (rendered once per campaign)."""
        out = [self.reprompt]
        for st in self.states.values():
            out.append(st.say)
            out.extend(h.say for h in st.on.values() if h.say)
        out.extend(h.say for h in self.global_on.values() if h.say)
        return list(dict.fromkeys(x for x in out if x))

    def handler(self, state: State, intent: str) -> Handler | None:
        if intent in state.on:
            return state.on[intent]
        if intent in self.global_on:
            return self.global_on[intent]
        return state.default


def _handler(raw: Any, where: str) -> Handler:
    if isinstance(raw, str):
        return Handler(goto=raw)
    if isinstance(raw, Mapping):
        unknown = set(raw) - {"goto", "say", "repeat"}
        if unknown:
            raise ScriptError(f"{where}: unknown handler keys {sorted(unknown)}")
        h = Handler(goto=raw.get("goto"), say=raw.get("say"), repeat=bool(raw.get("repeat")))
        if sum(x is not None and x is not False for x in (h.goto, h.say, h.repeat or None)) != 1:
            raise ScriptError(f"{where}: a handler needs exactly one of goto, say, repeat")
        return h
    raise ScriptError(f"{where}: a handler is a state name or a mapping, got {type(raw).__name__}")


def _handlers(raw: Any, where: str) -> dict[str, Handler]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ScriptError(f"{where}: expected a mapping of intent -> handler")
    return {str(k): _handler(v, f"{where}.{k}") for k, v in raw.items()}


def parse_script(data: Mapping[str, Any], *, source: str, known_intents: Iterable[str]) -> Script:
    def need(mapping: Mapping[str, Any], key: str, where: str) -> Any:
        if key not in mapping:
            raise ScriptError(f"{source}: {where} is missing {key!r}")
        return mapping[key]

    variables = {str(k): str(v) for k, v in (data.get("vars") or {}).items()}

    def fill(text: str, where: str) -> str:
        try:
            return text.format(**variables)
        except KeyError as exc:
            raise ScriptError(f"{source}: {where} uses undefined variable {exc}") from None

    own_intents = {str(k): tuple(str(x) for x in v) for k, v in (data.get("intents") or {}).items()}
    intents = set(known_intents) | set(own_intents)
    raw_states = need(data, "states", "the script")
    if not isinstance(raw_states, Mapping) or not raw_states:
        raise ScriptError(f"{source}: states must be a non-empty mapping")

    def filled(handlers: dict[str, Handler], where: str) -> dict[str, Handler]:
        out = {}
        for intent, h in handlers.items():
            if intent not in intents:
                raise ScriptError(f"{source}: {where} handles unknown intent {intent!r}")
            out[intent] = Handler(
                h.goto, fill(h.say, f"{where}.{intent}") if h.say else None, h.repeat
            )
        return out

    states: dict[str, State] = {}
    for name, raw in raw_states.items():
        where = f"states.{name}"
        if not isinstance(raw, Mapping):
            raise ScriptError(f"{source}: {where} must be a mapping")
        end = _vocab(Outcome, raw.get("end"), f"{source}: {where}.end")
        grade = _vocab(Grade, raw.get("grade"), f"{source}: {where}.grade")
        default = raw.get("default")
        states[name] = State(
            name=str(name),
            say=fill(str(need(raw, "say", where)), f"{where}.say"),
            # YAML 1.1 reads a bare `on:` key as the boolean True
            on=filled(
                _handlers(raw.get("on", raw.get(True)), f"{source}: {where}.on"), f"{where}.on"
            ),
            default=_handler(default, f"{source}: {where}.default")
            if default is not None
            else None,
            end=end,
            grade=grade,
            interruptible=bool(raw.get("interruptible", True)),
        )
    script = Script(
        name=str(need(data, "name", "the script")),
        start=str(need(data, "start", "the script")),
        states=states,
        global_on=filled(_handlers(data.get("global"), f"{source}: global"), "global"),
        reprompt=fill(
            str(data.get("reprompt", "不好意思，我没有听清楚，您能再说一遍吗？")), "reprompt"
        ),
        max_retries=int(data.get("max_retries", 2)),
        max_turns=int(data.get("max_turns", 14)),
        give_up=str(data.get("give_up", "end_no_response")),
        intents=own_intents,
        asr_prompt=_asr_prompt(data.get("asr_hints"), source),
    )
    _check_targets(script, source)
    return script


def _vocab(kind: type[_V], raw: Any, where: str) -> _V | None:
    """`raw` as a member of `kind` (None stays None); the error lists every allowed value."""
    if raw is None:
        return None
    try:
        return kind(str(raw))
    except ValueError:
        allowed = sorted(v.value for v in kind)
        raise ScriptError(f"{where} {raw!r} is not one of {allowed}") from None


def _asr_prompt(raw: Any, source: str) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise ScriptError(f"{source}: asr_hints must be a list of phrases")
    phrases = [x.strip().rstrip("。.！!？?") for x in raw if x.strip()]
    return "。".join(phrases) + "。" if phrases else None


def _check_targets(script: Script, source: str) -> None:
    names = set(script.states)
    for target, where in [(script.start, "start"), (script.give_up, "give_up")]:
        if target not in names:
            raise ScriptError(f"{source}: {where} names unknown state {target!r}")
    every = [("global", script.global_on)] + [
        (f"states.{s.name}.on", s.on) for s in script.states.values()
    ]
    for where, handlers in every:
        for intent, h in handlers.items():
            if h.goto and h.goto not in names:
                raise ScriptError(f"{source}: {where}.{intent} goes to unknown state {h.goto!r}")
    for s in script.states.values():
        if s.default and s.default.goto and s.default.goto not in names:
            raise ScriptError(f"{source}: states.{s.name}.default goes to unknown state")


def load_script(path: str | Path, *, known_intents: Iterable[str]) -> Script:
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScriptError(f"{p}: script file not found") from None
    except yaml.YAMLError as exc:
        raise ScriptError(f"{p}: not valid YAML: {exc}") from None
    if not isinstance(data, Mapping):
        raise ScriptError(f"{p}: top level must be a mapping")
    return parse_script(data, source=str(p), known_intents=known_intents)
