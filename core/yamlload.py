"""The one safe YAML loader for hand-written files (config, scripts, personas).

PyYAML's ``safe_load`` still accepts anchors and aliases (a few lines of "billion laughs"
expand to gigabytes once walked), silently keeps the last of two equal keys, reads an
unbounded file, and turns ``on``/``off``/``yes``/``no`` into booleans (so a script's ``on:``
key became ``True``). This loader:

- refuses files over `max_bytes` before parsing them;
- refuses every alias (``*name``): the files it reads never need one;
- refuses duplicate keys in a mapping;
- reads only ``true``/``false`` as booleans (YAML 1.2), so ``on:`` is the string "on";
- reports every problem as one line, ``<file>: line N, column M: <what>``.

The caller turns :class:`YamlLoadError` into its own error type (ConfigError, ScriptError).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, SequenceNode

MAX_BYTES = 1 << 20  # 1 MiB: a large script is tens of kilobytes

_BOOL_TAG = "tag:yaml.org,2002:bool"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlLoadError(ValueError):
    """A file that is missing, too large, not YAML, or uses a refused construct (one line)."""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader without aliases, duplicate keys or YAML 1.1's yes/no/on/off booleans."""

    yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != _BOOL_TAG]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(AliasEvent):
            event = self.peek_event()
            raise yaml.MarkedYAMLError(
                problem=f"alias *{event.anchor} refused (aliases are not allowed)",
                problem_mark=event.start_mark,
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: the base class reports it
                continue
            if duplicate:
                raise yaml.MarkedYAMLError(
                    problem=f"duplicate key {key!r}", problem_mark=key_node.start_mark
                )
        return super().construct_mapping(node, deep=deep)


_StrictLoader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load_yaml(path: str | Path, *, max_bytes: int = MAX_BYTES, what: str = "file") -> Any:
    """The YAML document in `path` (None for an empty file); `what` names it in errors."""
    return load_yaml_marked(path, max_bytes=max_bytes, what=what)[0]


Place = tuple[str | int, ...]
"""Where a value sits in a document: its keys and list indexes from the top, e.g.
``("states", "greeting", "on", "affirm")``."""


def load_yaml_marked(
    path: str | Path, *, max_bytes: int = MAX_BYTES, what: str = "file"
) -> tuple[Any, dict[Place, int]]:
    """`load_yaml`, plus the 1-based line of every key and list item by its place, so a
    checker can name the line of a problem it finds in the loaded data (``script check``)."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            raw = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise YamlLoadError(f"{p}: {what} not found") from None
    except OSError as exc:
        raise YamlLoadError(f"{p}: cannot read the {what}: {exc.strerror}") from None
    if len(raw) > max_bytes:
        raise YamlLoadError(f"{p}: {what} too large (over {max_bytes} bytes)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlLoadError(f"{p}: not UTF-8 (byte {exc.start})") from None
    try:
        loader = _StrictLoader(text)  # a SafeLoader subclass
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
        return data, _lines(node)
    except yaml.MarkedYAMLError as exc:
        raise YamlLoadError(f"{p}: {_where(exc)}{_what(exc)}") from None
    except yaml.YAMLError as exc:
        raise YamlLoadError(f"{p}: not valid YAML: {_one_line(str(exc))}") from None
    except RecursionError:
        raise YamlLoadError(f"{p}: nested too deeply") from None


def _lines(node: Node | None) -> dict[Place, int]:
    """The line of each key (mappings) and item (sequences) under `node`, by its place."""
    out: dict[Place, int] = {}
    todo: list[tuple[Place, Node | None]] = [((), node)]
    while todo:
        place, current = todo.pop()
        if isinstance(current, MappingNode):
            for key_node, value_node in current.value:
                here = (*place, str(key_node.value))
                out.setdefault(here, key_node.start_mark.line + 1)
                todo.append((here, value_node))
        elif isinstance(current, SequenceNode):
            for index, item in enumerate(current.value):
                out[(*place, index)] = item.start_mark.line + 1
                todo.append(((*place, index), item))
    return out


def _where(exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    return f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""


def _what(exc: yaml.MarkedYAMLError) -> str:
    problem = exc.problem or ""
    if problem.startswith(("alias ", "duplicate key ")):
        return problem
    context = exc.context or ""
    started = exc.context_mark
    if context and started and started != exc.problem_mark:
        context += f" started at line {started.line + 1}"
    parts = [x for x in (problem, context) if x]
    return "not valid YAML: " + _one_line("; ".join(parts) or "syntax error")


def _one_line(text: str) -> str:
    return " ".join(text.split())
