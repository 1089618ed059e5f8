"""The ``when:`` expression language of scripts: conditions on slots, intents, scores, lead fields.

A tiny, fixed grammar parsed here (never ``eval``): a script is written by a customer's author,
so a condition must not be able to run code, loop, or reach anything but the call's memory.
A general-purpose evaluator (``simpleeval`` and the like) walks Python's own AST and has had
sandbox escapes; this grammar is a dozen lines and is checked at load, so a typo in a name
(``slot.budgte``) is a ScriptError, not a condition that is silently never true.

Grammar::

    expr  := and ("or" and)*
    and   := not ("and" not)*
    not   := "not" not | cmp
    cmp   := atom (("==" | "!=" | "<" | "<=" | ">" | ">=") atom)?
    atom  := NUMBER | STRING | "true" | "false" | NAME | "(" expr ")"
    NAME  := word ("." word)*          e.g. slot.budget, intent.book_meeting, score.hesitation

Strings are in single or double quotes. A name with no value (a slot never heard, a lead field
not in the file) is missing: it is false, and every comparison with it is false (``not`` of it
is true). Values: what ``callflow.memory.environment`` gives for a call.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Condition", "WhenError", "compile_when"]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<num>\d+(?:\.\d+)?)
      | (?P<str>"[^"]*"|'[^']*')
      | (?P<op>==|!=|<=|>=|<|>|\(|\))
      | (?P<name>[^\W\d]\w*(?:\.\w+)*)
    )""",
    re.VERBOSE,
)
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
_KEYWORDS = frozenset({"and", "or", "not", "true", "false"})


class WhenError(ValueError):
    """A condition that does not parse, or names something the script cannot know."""


# the parsed tree: ("lit", value) | ("name", dotted) | ("not", x) | ("and"|"or", a, b)
# | ("cmp", op, a, b)
Node = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Condition:
    """A parsed ``when:`` expression; `source` is the text as written (for messages)."""

    source: str
    tree: Node

    def names(self) -> list[str]:
        """Every name the expression reads (``slot.budget``), in order."""
        out: list[str] = []
        _names(self.tree, out)
        return out

    def holds(self, env: Mapping[str, Any]) -> bool:
        """Whether the condition is true for `env` (name -> value; absent: missing)."""
        return _truthy(_value(self.tree, env))


def _names(node: Node, out: list[str]) -> None:
    if node[0] == "name":
        out.append(node[1])
    for child in node[1:]:
        if isinstance(child, tuple):
            _names(child, out)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos, end = 0, len(text.rstrip())
    while pos < end:
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise WhenError(f"cannot read {text[pos:].strip()!r} in {text!r}")
        kind = m.lastgroup or ""
        value = m.group(kind)
        if kind == "name" and value in _KEYWORDS:
            kind = value
        out.append((kind, value))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ("end", "")

    def take(self) -> tuple[str, str]:
        token = self.peek()
        self.pos += 1
        return token

    def fail(self, what: str) -> WhenError:
        kind, value = self.peek()
        found = "the end" if kind == "end" else repr(value)
        return WhenError(f"{what}, found {found} in {self.text!r}")

    def parse(self) -> Node:
        if not self.tokens:
            raise WhenError("an empty condition")
        tree = self.either()
        if self.peek()[0] != "end":
            raise self.fail("expected and, or, or the end")
        return tree

    def either(self) -> Node:
        left = self.both()
        while self.peek()[0] == "or":
            self.take()
            left = ("or", left, self.both())
        return left

    def both(self) -> Node:
        left = self.negated()
        while self.peek()[0] == "and":
            self.take()
            left = ("and", left, self.negated())
        return left

    def negated(self) -> Node:
        if self.peek()[0] == "not":
            self.take()
            return ("not", self.negated())
        return self.compared()

    def compared(self) -> Node:
        left = self.atom()
        kind, value = self.peek()
        if kind == "op" and value in _COMPARE:
            self.take()
            return ("cmp", value, left, self.atom())
        return left

    def atom(self) -> Node:
        kind, value = self.take()
        if kind == "num":
            return ("lit", float(value) if "." in value else int(value))
        if kind == "str":
            return ("lit", value[1:-1])
        if kind in ("true", "false"):
            return ("lit", kind == "true")
        if kind == "name":
            return ("name", value)
        if (kind, value) == ("op", "("):
            inner = self.either()
            if self.take() != ("op", ")"):
                self.pos -= 1
                raise self.fail("expected )")
            return inner
        self.pos -= 1
        raise self.fail("expected a name, a number, a string, true, false or (")


def compile_when(text: Any, check: Callable[[str], str | None] | None = None) -> Condition:
    """Parse `text`; `check(name)` returns a problem with a name (None: fine). Every problem
    is a WhenError with a one-line message."""
    if isinstance(text, bool):
        text = "true" if text else "false"
    if not isinstance(text, str):
        raise WhenError(f"a condition is a string, got {type(text).__name__}")
    cond = Condition(text, _Parser(text).parse())
    for name in cond.names() if check else ():
        problem = check(name) if check else None
        if problem:
            raise WhenError(f"{problem} in {text!r}")
    return cond


_MISSING = object()


def _truthy(value: Any) -> bool:
    return value is not _MISSING and value is not None and bool(value)


def _value(node: Node, env: Mapping[str, Any]) -> Any:
    op = node[0]
    if op == "lit":
        return node[1]
    if op == "name":
        value = env.get(node[1], _MISSING)
        return _MISSING if value is None else value
    if op == "not":
        return not _truthy(_value(node[1], env))
    if op == "and":
        return _truthy(_value(node[1], env)) and _truthy(_value(node[2], env))
    if op == "or":
        return _truthy(_value(node[1], env)) or _truthy(_value(node[2], env))
    left, right = _value(node[2], env), _value(node[3], env)
    if left is _MISSING or right is _MISSING:
        return False
    try:
        return _COMPARE[node[1]](left, right)
    except TypeError:  # "a" < 3: different kinds never compare true
        return False
