"""Parsing a sales script: a loaded YAML mapping -> ``callflow.script.Script``, checked.

``parse_script`` checks every key and value strictly and builds the Script; every mistake is a
one-line ``ScriptError`` naming the file and the place. Then the whole script is checked: state
names, conditions, knowledge answers, transfers, the recording notice and the AI disclosure.
``load_script`` reads a script file with the strict YAML loader first. The script language is
described in ``callflow.script``, which holds the model this module builds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from core.vocab import Grade, Outcome
from core.yamlload import YamlLoadError, load_yaml

from . import memory, personal
from .bargein import parse_say
from .clarify import FALLBACK
from .grading import Rule, parse_grading
from .script import (
    DEFAULT_CLARIFY_BELOW,
    DISCLOSURE_MARKERS,
    Handler,
    Script,
    ScriptError,
    State,
    script_texts,
)
from .silence import Silence, parse_silence
from .voicemail import Voicemail, parse_voicemail
from .when import Condition, WhenError, compile_when

_V = TypeVar("_V", Outcome, Grade)

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
        "knowledge",
        "silence",
        "voicemail",
        "dtmf",
        "transfer",
        "recording_notice",
        "grading",
        "slots",
        "fallbacks",
    }
)
_STATE_KEYS = frozenset(
    {
        "say",
        "on",
        "default",
        "end",
        "grade",
        "interruptible",
        "dtmf",
        "asr_hints",
        "skip_if",
        "skip_to",
    }
)
_HANDLER_KEYS = frozenset({"goto", "say", "repeat", "transfer", "send_dtmf"})
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
    if isinstance(raw, list):
        return _branches(raw, where)
    if isinstance(raw, Mapping) and "answer" in raw:
        return _answer_handler(raw, where)
    if isinstance(raw, Mapping):
        unknown = set(raw) - _HANDLER_KEYS
        if unknown:
            raise ScriptError(f"{where}: unknown handler keys {sorted(unknown, key=str)}")
        h = Handler(
            goto=_text(raw["goto"], f"{where}.goto") if "goto" in raw else None,
            say=_text(raw["say"], f"{where}.say") if "say" in raw else None,
            repeat=_flag(raw["repeat"], f"{where}.repeat") if "repeat" in raw else False,
            transfer=_text(raw["transfer"], f"{where}.transfer") if "transfer" in raw else None,
            send_dtmf=_digits(raw["send_dtmf"], f"{where}.send_dtmf")
            if "send_dtmf" in raw
            else None,
        )
        kinds = sum(x is not None for x in (h.goto, h.say, h.repeat or None, h.transfer))
        if kinds != 1 and not (kinds == 0 and h.send_dtmf):
            raise ScriptError(
                f"{where}: a handler needs exactly one of goto, say, repeat, transfer "
                f"(send_dtmf alone or with goto)"
            )
        if h.send_dtmf and (h.say or h.repeat or h.transfer):
            raise ScriptError(f"{where}: send_dtmf goes alone or with goto")
        return h
    raise ScriptError(f"{where}: a handler is a state name or a mapping, got {type(raw).__name__}")


def _branches(raw: list[Any], where: str) -> Handler:
    """A handler list: ``[{when: cond, goto: x}, ..., {goto: y}]`` (names checked later)."""
    if not raw:
        raise ScriptError(f"{where}: a handler list must not be empty")
    out: list[tuple[Condition | None, Handler]] = []
    for i, item in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(item, Mapping):
            raise ScriptError(f"{at}: an item is a mapping ({{when: ..., goto: ...}})")
        rest = {k: v for k, v in item.items() if k != "when"}
        try:
            cond = compile_when(item["when"]) if "when" in item else None
        except WhenError as exc:
            raise ScriptError(f"{at}.when: {exc}") from None
        out.append((cond, _handler(rest, at)))
    return Handler(branches=tuple(out))


def _answer_handler(raw: Mapping[str, Any], where: str) -> Handler:
    """``{answer: knowledge, fallback: "..."}``: answer in place from the knowledge file, or
    say the fallback line when it has no answer confident enough (``callflow.knowledge``)."""
    if set(raw) != {"answer", "fallback"}:
        raise ScriptError(
            f"{where}: an answer handler is exactly {{answer: knowledge, fallback: ...}}"
        )
    if raw["answer"] != "knowledge":
        raise ScriptError(f"{where}.answer must be knowledge, got {raw['answer']!r}")
    fallback = _text(raw["fallback"], f"{where}.fallback").strip()
    if not fallback:
        raise ScriptError(f"{where}.fallback must not be empty")
    return Handler(answer="knowledge", fallback=fallback)


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
    require_recording_notice: bool = False,
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
    fallbacks = _fallbacks(data.get("fallbacks"), source)

    def fill(text: str, where: str) -> str:
        try:
            out = personal.fill_vars(text, variables)
            personal.check_fallbacks(out, fallbacks)
        except personal.TemplateError as exc:
            raise ScriptError(f"{source}: {where}: {exc}") from None
        return out

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
            out[intent] = _filled(h, f"{where}.{intent}", fill)
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
        interruptible = _flag(raw.get("interruptible", True), f"{source}: {where}.interruptible")
        say, segments = _line(need(raw, "say", where), interruptible, f"{source}: {where}", fill)
        states[name] = State(
            name=name,
            say=say,
            segments=segments,
            on=filled(_handlers(raw.get("on"), f"{source}: {where}.on"), f"{where}.on"),
            default=_handler(default, f"{source}: {where}.default")
            if default is not None
            else None,
            end=_vocab(Outcome, raw.get("end"), f"{source}: {where}.end"),
            grade=_vocab(Grade, raw.get("grade"), f"{source}: {where}.grade"),
            interruptible=interruptible,
            dtmf=_keys(raw.get("dtmf"), f"{source}: {where}.dtmf", intents),
            asr_prompt=_asr_prompt(raw.get("asr_hints"), f"{source}: {where}"),
            **_skip(raw, f"{source}: {where}"),
        )
    slots = memory.SLOTS | _declared_slots(data.get("slots"), source)
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
        silence=_silence(data.get("silence"), source, fill),
        voicemail=_voicemail(data.get("voicemail"), source, fill),
        dtmf=_keys(data.get("dtmf"), f"{source}: dtmf", intents),
        **_transfer(data.get("transfer"), source, fill),
        recording_notice=_notice(data.get("recording_notice"), source, fill),
        knowledge=_knowledge(data.get("knowledge"), source),
        grading=_grading(data.get("grading"), source, intents, slots),
        fallbacks=fallbacks,
        slots=slots,
    )
    _check_conditions(script, source, intents)
    _check_targets(script, source)
    _check_answers(script, source)
    _check_transfers(script, source)
    if require_recording_notice and not script.recording_notice:
        raise ScriptError(
            f"{source}: calls are recorded, so the script needs a recording_notice: line said "
            f"before the greeting (e.g. 本次通话可能会被录音)"
        )
    if require_disclosure:
        _check_disclosure(script, data.get("ai_disclosure"), source)
    return script


_DTMF_KEYS = frozenset("0123456789*#ABCD")


def _digits(raw: Any, where: str) -> str:
    """DTMF digits to send: 1-32 of 0-9, *, #, A-D."""
    text = str(raw) if isinstance(raw, int) and not isinstance(raw, bool) else raw
    if not isinstance(text, str) or not 0 < len(text) <= 32 or not set(text) <= _DTMF_KEYS:
        raise ScriptError(f"{where} must be 1-32 DTMF keys (0-9 * # A-D), got {raw!r}")
    return text


def _keys(raw: Any, where: str, intents: set[str]) -> dict[str, str]:
    """A ``dtmf:`` mapping: one key (quoted in YAML: "1") -> a known intent."""
    out = {}
    for key, intent in _mapping(raw, where).items():
        if len(key) != 1 or key not in _DTMF_KEYS:
            raise ScriptError(f"{where}: {key!r} is not one DTMF key (0-9 * # A-D)")
        if not isinstance(intent, str) or intent not in intents:
            raise ScriptError(f"{where}.{key} names unknown intent {intent!r}")
        out[key] = intent
    return out


def _transfer(raw: Any, source: str, fill: Callable[[str, str], str]) -> dict[str, Any]:
    """The ``transfer:`` section: ``say`` (before transferring), ``failed`` (a state)."""
    section = _mapping(raw, f"{source}: transfer")
    _known_keys(section, frozenset({"say", "failed"}), f"{source}: transfer: unknown key")
    out: dict[str, Any] = {}
    if "say" in section:
        out["transfer_say"] = fill(_text(section["say"], f"{source}: transfer.say"), "transfer")
    if "failed" in section:
        out["transfer_failed"] = _text(section["failed"], f"{source}: transfer.failed")
    return out


def _notice(raw: Any, source: str, fill: Callable[[str, str], str]) -> str | None:
    if raw is None:
        return None
    text = _text(raw, f"{source}: recording_notice").strip()
    if not text:
        raise ScriptError(f"{source}: recording_notice must not be empty")
    return fill(text, "recording_notice")


def _check_transfers(script: Script, source: str) -> None:
    """A script that transfers names where to go when nobody answers: an existing state."""
    handlers = [h for x in script.global_on.values() for h in x.flat()]
    for st in script.states.values():
        handlers.extend(h for x in st.on.values() for h in x.flat())
        handlers.extend(st.default.flat() if st.default else [])
    if script.transfer_failed is not None and script.transfer_failed not in script.states:
        raise ScriptError(
            f"{source}: transfer.failed names unknown state {script.transfer_failed!r}"
        )
    if any(h.transfer for h in handlers) and script.transfer_failed is None:
        raise ScriptError(
            f"{source}: the script transfers calls, so transfer.failed must name the state "
            f"entered when the agent does not answer"
        )


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


def _line(
    raw: Any, interruptible: bool, where: str, fill: Callable[[str, str], str]
) -> tuple[str, tuple[tuple[str, bool], ...]]:
    """A state's ``say``: a string, or parts some of which may not be interrupted."""
    try:
        text, parts = parse_say(raw, interruptible)
    except ValueError as exc:
        raise ScriptError(f"{where}.say {exc}") from None
    short = where.split(": ", 1)[-1]
    parts = tuple((fill(t, f"{short}.say"), cut) for t, cut in parts)
    return (fill(text, f"{short}.say") if not parts else "".join(t for t, _ in parts)), parts


def _silence(raw: Any, source: str, fill: Callable[[str, str], str]) -> Silence | None:
    try:
        return parse_silence(raw, fill)
    except ValueError as exc:
        raise ScriptError(f"{source}: {exc}") from None


def _voicemail(raw: Any, source: str, fill: Callable[[str, str], str]) -> Voicemail | None:
    try:
        return parse_voicemail(raw, fill)
    except ValueError as exc:
        raise ScriptError(f"{source}: {exc}") from None


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
        for intent, hs in handlers.items():
            for h in hs.flat():
                if h.goto and h.goto not in names:
                    raise ScriptError(
                        f"{source}: {where}.{intent} goes to unknown state {h.goto!r}"
                    )
    for s in script.states.values():
        for h in s.default.flat() if s.default else ():
            if h.goto and h.goto not in names:
                raise ScriptError(f"{source}: states.{s.name}.default goes to unknown state")
        if s.skip_to is not None and s.skip_to not in names:
            raise ScriptError(
                f"{source}: states.{s.name}.skip_to names unknown state {s.skip_to!r}"
            )


def _knowledge(raw: Any, source: str) -> str | None:
    """The ``knowledge:`` file, relative to the script's folder (``load_script`` resolves it)."""
    if raw is None:
        return None
    text = _text(raw, f"{source}: knowledge").strip()
    if not text:
        raise ScriptError(f"{source}: knowledge must name a knowledge file")
    return text


def _check_answers(script: Script, source: str) -> None:
    """An ``answer: knowledge`` handler needs the script to name its knowledge file."""
    if script.knowledge is not None:
        return
    every = [("global", script.global_on)] + [
        (f"states.{s.name}.on", s.on) for s in script.states.values()
    ]
    for where, handlers in every:
        for intent, h in ((i, h) for i, x in handlers.items() for h in x.flat()):
            if h.answer:
                raise ScriptError(
                    f"{source}: {where}.{intent} answers from knowledge but the script names "
                    "no knowledge file (knowledge: FILE.yaml)"
                )


def _filled(h: Handler, where: str, fill: Callable[[str, str], str]) -> Handler:
    """`h` with the script's vars in its lines (and in each branch's)."""
    if h.branches:
        branches = tuple(
            (c, _filled(b, f"{where}[{i}]", fill)) for i, (c, b) in enumerate(h.branches)
        )
        return replace(h, branches=branches)
    return replace(
        h,
        say=fill(h.say, where) if h.say else None,
        fallback=fill(h.fallback, f"{where}.fallback") if h.fallback else None,
    )


def _skip(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A state's ``skip_if`` (a condition) and ``skip_to`` (default: its default's goto)."""
    if "skip_if" not in raw:
        if "skip_to" in raw:
            raise ScriptError(f"{where}: skip_to needs skip_if")
        return {}
    try:
        cond = compile_when(raw["skip_if"])
    except WhenError as exc:
        raise ScriptError(f"{where}.skip_if: {exc}") from None
    target = raw.get("skip_to")
    if target is None and isinstance(raw.get("default"), str):
        target = raw["default"]
    if target is None:
        raise ScriptError(f"{where}: skip_if needs skip_to (the state to go on to)")
    return {"skip_if": cond, "skip_to": _text(target, f"{where}.skip_to")}


def _declared_slots(raw: Any, source: str) -> frozenset[str]:
    if raw is None:
        return frozenset()
    if not isinstance(raw, list) or not all(isinstance(x, str) and x for x in raw):
        raise ScriptError(f"{source}: slots must be a list of slot names")
    return frozenset(raw)


def _fallbacks(raw: Any, source: str) -> dict[str, str]:
    """``fallbacks:`` ``lead.X`` / ``slot.X`` -> the words said when the field is missing."""
    out = {}
    for key, value in _mapping(raw, f"{source}: fallbacks").items():
        space, _, name = key.partition(".")
        if space not in ("lead", "slot") or not name:
            raise ScriptError(f"{source}: fallbacks.{key}: a key is lead.NAME or slot.NAME")
        out[key] = _text(value, f"{source}: fallbacks.{key}")
    return out


def _grading(raw: Any, source: str, intents: set[str], slots: frozenset[str]) -> tuple[Rule, ...]:
    def check(name: str) -> str | None:
        return memory.known_name(name, intents=intents, slots=slots)

    try:
        return parse_grading(raw, check)
    except ValueError as exc:
        raise ScriptError(f"{source}: {exc}") from None


def _check_conditions(script: Script, source: str, intents: set[str]) -> None:
    """Every ``when:``/``skip_if:`` names known slots, intents and scores; every placeholder
    a known slot (lead fields: any column)."""

    def check(cond: Condition | None, where: str) -> None:
        if cond is None:
            return
        for name in cond.names():
            problem = memory.known_name(name, intents=intents, slots=script.slots)
            if problem:
                raise ScriptError(f"{source}: {where}: {problem} in {cond.source!r}")

    every = [("global", script.global_on)] + [
        (f"states.{s.name}.on", s.on) for s in script.states.values()
    ]
    every += [
        (f"states.{s.name}", {"default": s.default}) for s in script.states.values() if s.default
    ]
    for where, handlers in every:
        for intent, h in handlers.items():
            for i, (cond, _) in enumerate(h.branches):
                check(cond, f"{where}.{intent}[{i}].when")
    for s in script.states.values():
        check(s.skip_if, f"states.{s.name}.skip_if")
    for line in script_texts(script):
        for space, name, _ in personal.placeholders(line):
            if space == "slot" and name not in script.slots:
                raise ScriptError(f"{source}: {{slot.{name}}}: unknown slot {name!r}")


def _resolve_knowledge(script: Script, path: Path) -> Script:
    if script.knowledge is None:
        return script
    found = path.parent / script.knowledge
    if not found.is_file():
        raise ScriptError(f"{path}: knowledge file {script.knowledge!r} not found at {found}")
    return replace(script, knowledge=str(found))


def load_script(
    path: str | Path,
    *,
    known_intents: Iterable[str],
    require_disclosure: bool = True,
    require_recording_notice: bool = False,
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
    script = parse_script(
        data,
        source=str(p),
        known_intents=known_intents,
        require_disclosure=require_disclosure,
        require_recording_notice=require_recording_notice,
    )
    return _resolve_knowledge(script, p)
