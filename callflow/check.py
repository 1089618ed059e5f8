"""``main.py script check FILE``: every problem of a script, each with its line.

`load_script` stops at the first mistake and says where in dotted form; an author wants the
whole list at once, in the editor's ``FILE:LINE: error|warning: message`` form. This checker
reads the file with the strict loader's line marks (``core.yamlload.load_yaml_marked``) and
reports:

- errors: YAML and structure mistakes (``parse_script``'s own, placed on their line), intents in
  neither the product taxonomy nor the script's ``intents:``, handlers going to states that do
  not exist, placeholders naming no variable, lead field or slot, states or handlers with
  nothing to say, ``answer: knowledge`` handlers without a knowledge file (or a file that is
  not there), states from which no handler leads to an ending (a loop without exit: only
  ``give_up`` would end the call), a greeting that does not disclose the AI, recordings the
  recorded-prompt manifest names but that are missing on disk;
- warnings: states no path from ``start`` reaches, lines with no recording (the backup TTS
  speaks them) when a recordings folder is checked.

The graph parts live in ``callflow.checkgraph``; this module reads the file and the raw data.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.yamlload import Place, YamlLoadError, load_yaml_marked

from .checkgraph import Level, graph_problems
from .memory import SLOTS, known_name
from .script import Script, ScriptError
from .script_parse import parse_script
from .when import WhenError, compile_when

# a line's recording: (a recording or template covers it, the files it needs that are missing)
RecordingLookup = Callable[[str], tuple[bool, list[str]]]


@dataclass(frozen=True, slots=True)
class Problem:
    line: int
    level: Level
    message: str

    def render(self, file: str) -> str:
        return f"{file}:{self.line}: {self.level}: {self.message}"


class _Marks:
    """Lines of the places in a loaded file; the nearest enclosing place when one is absent."""

    def __init__(self, marks: Mapping[Place, int]) -> None:
        self._marks = marks

    def line(self, *place: str | int) -> int:
        for end in range(len(place), 0, -1):
            if place[:end] in self._marks:
                return self._marks[place[:end]]
        return 1

    def find(self, dotted: str) -> int | None:
        """The line of a dotted place (``states.greeting.on.affirm``) or its longest prefix."""
        parts = dotted.split(".")
        for end in range(len(parts), 0, -1):
            if tuple(parts[:end]) in self._marks:
                return self._marks[tuple(parts[:end])]
        return None


def check_script(
    path: str | Path,
    *,
    known_intents: Iterable[str],
    fields: Iterable[str] = (),
    recording_of: RecordingLookup | None = None,
) -> list[Problem]:
    """Every problem of the script at `path`, by line. `fields`: placeholder names filled at
    call time (lead fields, slots) beside the script's ``vars``; `recording_of`: when the
    campaign speaks with recorded prompts, whether a line has its recordings."""
    p = Path(path)
    try:
        data, marks = load_yaml_marked(p, what="script file")
    except YamlLoadError as exc:
        found = re.search(r"line (\d+)", str(exc))
        return [Problem(int(found.group(1)) if found else 1, "error", _strip(str(exc), p))]
    if not isinstance(data, Mapping):
        return [Problem(1, "error", "the top level must be a mapping of script keys")]
    at = _Marks(marks)
    problems = list(_raw_problems(data, at, set(known_intents), set(fields), p))
    script, error = _parse(data, p, set(known_intents) | _used_intents(data))
    if error is not None:
        line = _error_line(error, at, p)
        if not any(x.line == line and x.level == "error" for x in problems):
            problems.append(Problem(line, "error", _strip(error, p)))
    if script is not None:
        problems.extend(
            Problem(line, level, text) for line, level, text in graph_problems(script, at.line)
        )
        problems.extend(_disclosure(data, p, script, at, set(known_intents)))
        if recording_of is not None:
            problems.extend(_recordings(data, at, recording_of))
    return sorted(set(problems), key=lambda x: (x.line, x.level, x.message))


def _strip(message: str, path: Path) -> str:
    return message.removeprefix(f"{path}: ")


def _parse(
    data: Mapping[str, Any], path: Path, intents: set[str]
) -> tuple[Script | None, str | None]:
    """The script, parsed with every intent it uses allowed (those are reported apart)."""
    try:
        return parse_script(data, source=str(path), known_intents=intents), None
    except ScriptError as exc:
        return None, str(exc)


_DOTTED = re.compile(r"[A-Za-z_][\w]*(?:\.[^\s.:'\"]+)*")


def _error_line(message: str, at: _Marks, path: Path) -> int:
    """The line of the first dotted place a ScriptError names (``states.x.on.y``)."""
    found = re.search(r"line (\d+)", message)
    if found:
        return int(found.group(1))
    for token in _DOTTED.findall(_strip(message, path)):
        line = at.find(token)
        if line is not None:
            return line
    return 1


# ---- checks on the raw data (each reports every instance, not the first) -----------------


def _handler_places(
    data: Mapping[str, Any],
) -> Iterator[tuple[tuple[str | int, ...], str, Any]]:
    """(place, intent, handler) of every ``global:`` and state ``on:`` entry; each branch of a
    ``when:`` list on its own (``[{when: …, goto: x}, {goto: y}]``)."""
    entries: list[tuple[tuple[str | int, ...], str, Any]] = [
        (("global", intent), intent, h) for intent, h in _items(data.get("global"))
    ]
    for name, state in _items(data.get("states")):
        if isinstance(state, Mapping):
            entries.extend(
                (("states", name, "on", intent), intent, h) for intent, h in _items(state.get("on"))
            )
    for place, intent, h in entries:
        if isinstance(h, list):
            for i, branch in enumerate(h):
                yield (*place, i), intent, branch
        else:
            yield place, intent, h


def _items(raw: Any) -> list[tuple[str, Any]]:
    return [(str(k), v) for k, v in raw.items()] if isinstance(raw, Mapping) else []


def _intent_uses(data: Mapping[str, Any]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """(place, intent) of every intent the script names: handlers, confirm, dtmf keys."""
    for place, intent, _ in _handler_places(data):
        yield place[: 2 if place[0] == "global" else 4], intent
    for intent, _ in _items(data.get("confirm")):
        yield ("confirm", intent), intent
    for key, intent in _items(data.get("dtmf")):
        yield ("dtmf", key), str(intent)
    for name, state in _items(data.get("states")):
        if isinstance(state, Mapping):
            for key, intent in _items(state.get("dtmf")):
                yield ("states", name, "dtmf", key), str(intent)


def _used_intents(data: Mapping[str, Any]) -> set[str]:
    return {intent for _, intent in _intent_uses(data)}


def _raw_problems(
    data: Mapping[str, Any], at: _Marks, intents: set[str], fields: set[str], path: Path
) -> Iterator[Problem]:
    yield from _undefined_intents(data, at, intents)
    yield from _undefined_states(data, at)
    yield from _empty_lines(data, at)
    yield from _placeholders(data, at, fields)
    yield from _knowledge(data, at, path)
    yield from _conditions(data, at, intents)


def _undefined_intents(data: Mapping[str, Any], at: _Marks, known: set[str]) -> Iterator[Problem]:
    own = {k for k, _ in _items(data.get("intents"))}
    for place, intent in _intent_uses(data):
        if intent not in known and intent not in own:
            yield Problem(
                at.line(*place),
                "error",
                f"undefined intent {intent!r}: not in the product taxonomy (nlu/base.py "
                f"INTENTS) nor in the script's intents:",
            )


def _targets(data: Mapping[str, Any]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """(place, state name) of every state the script names as somewhere to go."""
    for key in ("start", "give_up"):
        if isinstance(data.get(key), str):
            yield (key,), data[key]
    transfer = data.get("transfer")
    if isinstance(transfer, Mapping) and isinstance(transfer.get("failed"), str):
        yield ("transfer", "failed"), transfer["failed"]
    handlers = [(place, h) for place, _, h in _handler_places(data)]
    for name, state in _items(data.get("states")):
        if isinstance(state, Mapping) and "default" in state:
            handlers.append((("states", name, "default"), state["default"]))
        if isinstance(state, Mapping) and isinstance(state.get("skip_to"), str):
            yield ("states", name, "skip_to"), state["skip_to"]
    for place, h in handlers:
        if isinstance(h, str):
            yield place, h
        elif isinstance(h, Mapping) and isinstance(h.get("goto"), str):
            yield (*place, "goto"), h["goto"]


def _undefined_states(data: Mapping[str, Any], at: _Marks) -> Iterator[Problem]:
    states = {k for k, _ in _items(data.get("states"))}
    for place, target in _targets(data):
        if target not in states:
            yield Problem(at.line(*place), "error", f"goes to undefined state {target!r}")


def _empty_lines(data: Mapping[str, Any], at: _Marks) -> Iterator[Problem]:
    """A state without a line, or a ``say:`` handler with nothing to say."""
    for name, state in _items(data.get("states")):
        if not isinstance(state, Mapping):
            continue
        say = state.get("say")
        if say is None or (isinstance(say, str) and not say.strip()) or say == []:
            where = ("states", name, "say") if "say" in state else ("states", name)
            yield Problem(at.line(*where), "error", f"missing prompt: state {name!r} says nothing")
    for place, _, h in _handler_places(data):
        if isinstance(h, Mapping) and "say" in h and not str(h["say"] or "").strip():
            yield Problem(at.line(*place, "say"), "error", "missing prompt: an empty say:")


def _texts(data: Mapping[str, Any]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """(place, text) of every line the robot may say, as written (placeholders unfilled)."""
    for key in ("reprompt", "recording_notice"):
        if isinstance(data.get(key), str):
            yield (key,), data[key]
    for section, keys in (("transfer", ("say",)), ("silence", ("prompt", "goodbye"))):
        for key, text in _items(data.get(section)):
            if key in keys and isinstance(text, str):
                yield (section, key), text
    for intent, text in _items(data.get("confirm")):
        if isinstance(text, str):
            yield ("confirm", intent), text
    for place, _, h in _handler_places(data):
        for key, text in _items(h):
            if key in ("say", "fallback") and isinstance(text, str):
                yield (*place, key), text
    for name, state in _items(data.get("states")):
        say = state.get("say") if isinstance(state, Mapping) else None
        parts = say if isinstance(say, list) else [say]
        for i, part in enumerate(parts):
            text = part.get("text") if isinstance(part, Mapping) else part
            if isinstance(text, str):
                yield (
                    ("states", name, "say", i)
                    if isinstance(say, list)
                    else (
                        "states",
                        name,
                        "say",
                    ),
                    text,
                )


def _placeholders(data: Mapping[str, Any], at: _Marks, fields: set[str]) -> Iterator[Problem]:
    """``{var}`` names a ``vars:`` entry; ``{lead.X|…}`` / ``{slot.X|…}`` (callflow.personal)
    need a fallback (in place or under ``fallbacks:``), and X a known slot."""
    defined = {k for k, _ in _items(data.get("vars"))} | fields
    slots = set(SLOTS) | {str(x) for x in data.get("slots") or [] if isinstance(x, str)}
    fallbacks = {k for k, _ in _items(data.get("fallbacks"))}
    for place, text in _texts(data):
        for name in _BRACED.findall(text):
            yield from _placeholder(name, at.line(*place), defined, slots, fallbacks)


_BRACED = re.compile(r"\{([^{}]*)\}")


def _placeholder(
    name: str, line: int, defined: set[str], slots: set[str], fallbacks: set[str]
) -> Iterator[Problem]:
    field, bar, _ = name.partition("|")
    space, dot, key = field.partition(".")
    if dot and space in ("lead", "slot"):
        if space == "slot" and key not in slots:
            yield Problem(
                line, "error", f"undefined slot {{{field}}}: not a known slot nor in slots:"
            )
        elif not bar and field not in fallbacks:
            yield Problem(
                line,
                "error",
                f"placeholder {{{field}}} has no fallback: write {{{field}|…}} or give one "
                "under fallbacks:",
            )
    elif name not in defined:
        yield Problem(
            line, "error", f"undefined placeholder {{{name}}}: not in vars:, a lead field or a slot"
        )


def _conditions_of(data: Mapping[str, Any]) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    """(place, text) of every condition: handler branches' ``when:``, states' ``skip_if:``,
    ``grading:`` rules' ``when:``."""
    for place, _, h in _handler_places(data):
        if isinstance(h, Mapping) and "when" in h:
            yield (*place, "when"), h["when"]
    for name, state in _items(data.get("states")):
        if isinstance(state, Mapping) and "skip_if" in state:
            yield ("states", name, "skip_if"), state["skip_if"]
    rules = data.get("grading")
    for i, rule in enumerate(rules if isinstance(rules, list) else []):
        if isinstance(rule, Mapping) and "when" in rule:
            yield ("grading", i, "when"), rule["when"]


def _conditions(data: Mapping[str, Any], at: _Marks, known: set[str]) -> Iterator[Problem]:
    """Every condition parses and names only slots, intents, scores and fields that exist."""
    intents = known | {k for k, _ in _items(data.get("intents"))}
    slots = set(SLOTS) | {str(x) for x in data.get("slots") or [] if isinstance(x, str)}

    def check(name: str) -> str | None:
        return known_name(name, intents=intents, slots=slots)

    for place, text in _conditions_of(data):
        try:
            compile_when(text, check)
        except WhenError as exc:
            yield Problem(at.line(*place), "error", f"condition: {exc}")


def _knowledge(data: Mapping[str, Any], at: _Marks, path: Path) -> Iterator[Problem]:
    named = data.get("knowledge")
    if isinstance(named, str) and named.strip() and not (path.parent / named).is_file():
        yield Problem(at.line("knowledge"), "error", f"knowledge file {named!r} not found")
    if named is not None:
        return
    for place, _, h in _handler_places(data):
        if isinstance(h, Mapping) and "answer" in h:
            yield Problem(
                at.line(*place),
                "error",
                "answers from knowledge but the script names no knowledge file "
                "(knowledge: FILE.yaml)",
            )


def _disclosure(
    data: Mapping[str, Any], path: Path, script: Script, at: _Marks, known: set[str]
) -> Iterator[Problem]:
    """The greeting must say it is an AI (``parse_script``'s own rule, reused)."""
    try:
        parse_script(
            data,
            source=str(path),
            known_intents=known | _used_intents(data),
            require_disclosure=True,
        )
    except ScriptError:
        yield Problem(
            at.line("states", script.start, "say"),
            "error",
            f"missing AI disclosure: the greeting (states.{script.start}.say) does not say the "
            "callee is talking to an AI (e.g. 我是AI语音助手), nor the phrase named in "
            "ai_disclosure:",
        )


def _recordings(
    data: Mapping[str, Any], at: _Marks, recording_of: RecordingLookup
) -> Iterator[Problem]:
    """Lines with no recording (warning) or whose recordings are missing on disk (error)."""
    variables = {k: str(v) for k, v in _items(data.get("vars"))}
    for place, text in _texts(data):
        try:
            line = text.format(**variables)
        except (KeyError, ValueError, IndexError):
            line = text  # a lead field or slot: the template is what the manifest holds
        recorded, missing = recording_of(line)
        if missing:
            files = ", ".join(missing)
            yield Problem(at.line(*place), "error", f"missing recording: {files} not on disk")
        elif not recorded:
            yield Problem(
                at.line(*place), "warning", "no recording for this line (the backup TTS says it)"
            )
