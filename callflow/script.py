"""Sales scripts (话术) in YAML: states with a line to say and where each intent leads.

A state either *asks* (says its line, then waits for the callee) or *ends* (says its line,
then hangs up with an outcome). `global` handlers apply in every asking state unless the
state has its own handler for that intent. A handler is a target state name, or a mapping:
  {goto: state}          move on
  {say: text}            answer in place and stay (e.g. "who are you?")
  {repeat: true}         say the current line again

An ending state's ``end:`` names a ``core.vocab.Outcome`` and a qualified ending may carry a
``grade:`` (``core.vocab.Grade``: A, B or C); any other value is a ScriptError.

Clarification (``callflow.clarify``): ``clarify_below`` is the confidence under which a reply is
not acted on as heard (default 0.6; 0 turns clarification off), and ``confirm`` maps an intent to
the one short question that confirms it ("您是想了解价格吗？"); a weak reply whose intent has no
question there is acted on as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from core.vocab import Grade, Outcome
from core.yamlload import YamlLoadError, load_yaml

from .clarify import DEFAULT_THRESHOLD, FALLBACK

_V = TypeVar("_V", Outcome, Grade)

DEFAULT_CLARIFY_BELOW = DEFAULT_THRESHOLD  # measured: see callflow.clarify


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
    clarify_below: float = DEFAULT_CLARIFY_BELOW  # confidence under which a reply is clarified
    confirm: Mapping[str, str] = field(default_factory=dict)  # intent -> confirmation question

    def lines(self) -> list[str]:
        """Every fixed line the script can say (rendered once per campaign)."""
        out = [self.reprompt]
        for st in self.states.values():
            out.append(st.say)
            out.extend(h.say for h in st.on.values() if h.say)
        out.extend(h.say for h in self.global_on.values() if h.say)
        out.extend(self.confirm.values())
        return list(dict.fromkeys(x for x in out if x))

    def handler(self, state: State, intent: str) -> Handler | None:
        if intent in state.on:
            return state.on[intent]
        if intent in self.global_on:
            return self.global_on[intent]
        return state.default

    def expected(self, state: State) -> tuple[str, ...]:
        """The intents `state` handles itself or through ``global`` (a prior for the NLU)."""
        return tuple(dict.fromkeys([*state.on, *self.global_on]))


_TOP_KEYS = frozenset(
    {
        "name",
        "vars",
        "start",
        "give_up",
        "max_retries",
        "max_turns",
        "asr_hints",
        "reprompt",
        "global",
        "states",
        "intents",
        "clarify_below",
        "confirm",
        "ai_disclosure",
    }
)
# Phrases by which a greeting tells the callee they are talking to a machine. A script whose
# greeting uses other wording names it in ``ai_disclosure:`` (it must then appear verbatim).
DISCLOSURE_MARKERS = (
    "AI",
    "人工智能",
    "智能助理",
    "智能助手",
    "智能客服",
    "机器人",
    "语音助手",
    "虚拟助手",
    "自动语音",
)
_STATE_KEYS = frozenset({"say", "on", "default", "end", "grade", "interruptible"})
_HANDLER_KEYS = frozenset({"goto", "say", "repeat"})
_DEFAULT_REPROMPT = "不好意思，我没有听清楚，您能再说一遍吗？"


def _known_keys(raw: Mapping[Any, Any], known: frozenset[str], unknown: str) -> None:
    """A typo (``onn:``, ``globals:``) is an error, never a silently ignored key."""
    for key in raw:
        if key not in known:
            raise ScriptError(f"{unknown} {key!r} (known: {', '.join(sorted(known))})")


def _text(raw: Any, where: str) -> str:
    if not isinstance(raw, str):
        raise ScriptError(f"{where} must be a string, got {type(raw).__name__}")
    return raw


def _flag(raw: Any, where: str) -> bool:
    if not isinstance(raw, bool):
        raise ScriptError(f"{where} must be true or false, got {raw!r}")
    return raw


def _count(raw: Any, where: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise ScriptError(f"{where} must be a whole number >= 0, got {raw!r}")
    return raw


def _mapping(raw: Any, where: str) -> Mapping[str, Any]:
    """`raw` (None: empty) as a mapping whose keys are all strings."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ScriptError(f"{where} must be a mapping, got {type(raw).__name__}")
    for key in raw:
        if not isinstance(key, str):
            raise ScriptError(f"{where}: key {key!r} must be a string")
    return raw


def _handler(raw: Any, where: str) -> Handler:
    if isinstance(raw, str):
        return Handler(goto=raw)
    if isinstance(raw, Mapping):
        unknown = set(raw) - _HANDLER_KEYS
        if unknown:
            raise ScriptError(f"{where}: unknown handler keys {sorted(unknown, key=str)}")
        h = Handler(
            goto=_text(raw["goto"], f"{where}.goto") if "goto" in raw else None,
            say=_text(raw["say"], f"{where}.say") if "say" in raw else None,
            repeat=_flag(raw["repeat"], f"{where}.repeat") if "repeat" in raw else False,
        )
        if sum(x is not None and x is not False for x in (h.goto, h.say, h.repeat or None)) != 1:
            raise ScriptError(f"{where}: a handler needs exactly one of goto, say, repeat")
        return h
    raise ScriptError(f"{where}: a handler is a state name or a mapping, got {type(raw).__name__}")


def _handlers(raw: Any, where: str) -> dict[str, Handler]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ScriptError(f"{where}: expected a mapping of intent -> handler")
    return {str(k): _handler(v, f"{where}.{k}") for k, v in _mapping(raw, where).items()}


def _variables(raw: Any, source: str) -> dict[str, str]:
    out = {}
    for key, value in _mapping(raw, f"{source}: vars").items():
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ScriptError(f"{source}: vars.{key} must be a string or a number")
        out[key] = str(value)
    return out


def _share(raw: Any, where: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not 0 <= raw <= 1:
        raise ScriptError(f"{where} must be a number from 0 to 1, got {raw!r}")
    return float(raw)


def _own_intents(raw: Any, source: str) -> dict[str, tuple[str, ...]]:
    out = {}
    for key, examples in _mapping(raw, f"{source}: intents").items():
        if not isinstance(examples, list) or not all(isinstance(x, str) for x in examples):
            raise ScriptError(f"{source}: intents.{key} must be a list of example phrases")
        out[key] = tuple(examples)
    return out


def parse_script(
    data: Mapping[str, Any],
    *,
    source: str,
    known_intents: Iterable[str],
    require_disclosure: bool = False,
) -> Script:
    """Check `data` (a loaded script file) strictly and build the Script; every mistake is
    a ScriptError naming `source` and the place (``states.greeting.on.affirm``).

    `require_disclosure` (on for every script file a campaign loads, see `load_script`): the
    greeting, the start state's line, must tell the callee they are talking to an AI."""
    _known_keys(data, _TOP_KEYS, f"{source}: unknown top-level key")

    def need(mapping: Mapping[str, Any], key: str, where: str) -> Any:
        if key not in mapping:
            raise ScriptError(f"{source}: {where} is missing {key!r}")
        return mapping[key]

    variables = _variables(data.get("vars"), source)

    def fill(text: str, where: str) -> str:
        try:
            return text.format(**variables)
        except KeyError as exc:
            raise ScriptError(f"{source}: {where} uses undefined variable {exc}") from None
        except (ValueError, IndexError) as exc:
            raise ScriptError(f"{source}: {where} has a bad placeholder: {exc}") from None

    own_intents = _own_intents(data.get("intents"), source)
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
    for name, raw in _mapping(raw_states, f"{source}: states").items():
        where = f"states.{name}"
        if not isinstance(raw, Mapping):
            raise ScriptError(f"{source}: {where} must be a mapping")
        # a YAML 1.1 loader reads a bare `on:` key as the boolean True
        raw = {("on" if k is True else k): v for k, v in raw.items()}
        _known_keys(raw, _STATE_KEYS, f"{source}: {where}: unknown key")
        default = raw.get("default")
        states[name] = State(
            name=name,
            say=fill(_text(need(raw, "say", where), f"{source}: {where}.say"), f"{where}.say"),
            on=filled(_handlers(raw.get("on"), f"{source}: {where}.on"), f"{where}.on"),
            default=_handler(default, f"{source}: {where}.default")
            if default is not None
            else None,
            end=_vocab(Outcome, raw.get("end"), f"{source}: {where}.end"),
            grade=_vocab(Grade, raw.get("grade"), f"{source}: {where}.grade"),
            interruptible=_flag(raw.get("interruptible", True), f"{source}: {where}.interruptible"),
        )
    script = Script(
        name=_text(need(data, "name", "the script"), f"{source}: name"),
        start=_text(need(data, "start", "the script"), f"{source}: start"),
        states=states,
        global_on=filled(_handlers(data.get("global"), f"{source}: global"), "global"),
        reprompt=fill(
            _text(data.get("reprompt", _DEFAULT_REPROMPT), f"{source}: reprompt"), "reprompt"
        ),
        max_retries=_count(data.get("max_retries", 2), f"{source}: max_retries"),
        max_turns=_count(data.get("max_turns", 14), f"{source}: max_turns"),
        give_up=_text(data.get("give_up", "end_no_response"), f"{source}: give_up"),
        intents=own_intents,
        asr_prompt=_asr_prompt(data.get("asr_hints"), source),
        clarify_below=_share(
            data.get("clarify_below", DEFAULT_CLARIFY_BELOW), f"{source}: clarify_below"
        ),
        confirm=_questions(data.get("confirm"), source, intents, fill),
    )
    _check_targets(script, source)
    if require_disclosure:
        _check_disclosure(script, data.get("ai_disclosure"), source)
    return script


def _check_disclosure(script: Script, phrase: Any, source: str) -> None:
    greeting = script.states[script.start].say
    wanted: tuple[str, ...]
    if phrase is not None:
        wanted = (_text(phrase, f"{source}: ai_disclosure"),)
    else:
        wanted = DISCLOSURE_MARKERS
    if not any(w and w.casefold() in greeting.casefold() for w in wanted):
        raise ScriptError(
            f"{source}: the greeting (states.{script.start}.say) does not tell the callee they "
            f"are talking to an AI: say so in it (e.g. 我是AI语音助手), or name the phrase it "
            f"uses in ai_disclosure:"
        )


def _questions(
    raw: Any, source: str, intents: set[str], fill: Callable[[str, str], str]
) -> dict[str, str]:
    """The ``confirm:`` mapping: a known intent (not ``other``) -> a non-empty question."""
    out = {}
    for intent, question in _mapping(raw, f"{source}: confirm").items():
        where = f"confirm.{intent}"
        if intent not in intents or intent == FALLBACK:
            raise ScriptError(f"{source}: {where} names unknown intent {intent!r}")
        text = _text(question, f"{source}: {where}").strip()
        if not text:
            raise ScriptError(f"{source}: {where} must not be empty")
        out[intent] = fill(text, where)
    return out


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


def load_script(
    path: str | Path, *, known_intents: Iterable[str], require_disclosure: bool = True
) -> Script:
    """Load and check the script at `path` with the strict YAML loader (no aliases, no
    duplicate keys, bounded size); every problem is a one-line ScriptError. A script a
    campaign runs must disclose the AI in its greeting (`parse_script`)."""
    p = Path(path)
    try:
        data = load_yaml(p, what="script file")
    except YamlLoadError as exc:
        raise ScriptError(str(exc)) from None
    if not isinstance(data, Mapping):
        raise ScriptError(f"{p}: top level must be a mapping")
    return parse_script(
        data, source=str(p), known_intents=known_intents, require_disclosure=require_disclosure
    )
