"""A campaign's knowledge file (知识库): product facts, prices, policies and FAQ, in YAML.

::

    name: saas_demo
    product: 云启科技 智能客服系统
    entries:
      - id: price_standard          # lower case letters, digits, _ ; unique in the file
        kind: price                 # fact | price | policy | faq
        answer: 标准版每个坐席每月三百元。     # what the robot says, as written
        questions: [标准版多少钱, 一个坐席一个月多少钱]   # paraphrases callers ask (2 or more)

Read with the strict loader (``core.yamlload``); every mistake is one ``KnowledgeFileError``
line naming the file and the entry (``f.yaml: entries[3] (price_pro): questions ...``). The
file's SHA-256 identifies it, so an index is built once per file content.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from core.text import canonical
from core.yamlload import YamlLoadError, load_yaml

KINDS: Final = ("fact", "price", "policy", "faq")
MIN_QUESTIONS: Final = 2
MAX_ANSWER_CHARS: Final = 200  # spoken on a phone call: one or two sentences
_ID: Final = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_TOP_KEYS: Final = frozenset({"name", "product", "entries"})
_ENTRY_KEYS: Final = frozenset({"id", "kind", "answer", "questions"})


class KnowledgeFileError(ValueError):
    """A knowledge file that cannot be used; one line naming the file and the entry."""


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    kind: str
    answer: str
    questions: tuple[str, ...]  # canonical text (``core.text``)


@dataclass(frozen=True, slots=True)
class KnowledgeFile:
    name: str
    product: str
    entries: tuple[Entry, ...]
    sha256: str  # of the file's bytes: the index cache key

    def entry(self, entry_id: str) -> Entry:
        for e in self.entries:
            if e.id == entry_id:
                return e
        raise KeyError(entry_id)


def _string(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise KnowledgeFileError(f"{where} must be a non-empty string, got {raw!r}")
    return raw.strip()


def _known(raw: Mapping[Any, Any], known: frozenset[str], where: str) -> None:
    for key in raw:
        if key not in known:
            raise KnowledgeFileError(
                f"{where}: unknown key {key!r} (known: {', '.join(sorted(known))})"
            )


def _questions(raw: Any, where: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or len(raw) < MIN_QUESTIONS:
        raise KnowledgeFileError(
            f"{where}: questions must be a list of at least {MIN_QUESTIONS} paraphrases"
        )
    out = [canonical(_string(q, f"{where}: questions[{i}]")) for i, q in enumerate(raw)]
    twice = sorted({q for q in out if out.count(q) > 1})
    if twice:
        raise KnowledgeFileError(f"{where}: question {twice[0]!r} is listed twice")
    return tuple(out)


def _entry(raw: Any, where: str) -> Entry:
    if not isinstance(raw, Mapping):
        raise KnowledgeFileError(f"{where} must be a mapping with id, kind, answer, questions")
    entry_id = raw.get("id")
    if not isinstance(entry_id, str) or not _ID.match(entry_id):
        raise KnowledgeFileError(
            f"{where}: id must be lower case letters, digits and _ (starting with a letter), "
            f"got {entry_id!r}"
        )
    where = f"{where} ({entry_id})"
    _known(raw, _ENTRY_KEYS, where)
    kind = raw.get("kind", "faq")
    if kind not in KINDS:
        raise KnowledgeFileError(f"{where}: kind {kind!r} is not one of {list(KINDS)}")
    answer = _string(raw.get("answer"), f"{where}: answer")
    if len(answer) > MAX_ANSWER_CHARS:
        raise KnowledgeFileError(
            f"{where}: answer is {len(answer)} characters; keep it under {MAX_ANSWER_CHARS} "
            "(it is spoken on the phone)"
        )
    return Entry(entry_id, kind, answer, _questions(raw.get("questions"), where))


def parse_knowledge(data: Any, *, source: str, sha256: str = "") -> KnowledgeFile:
    """Check `data` (a loaded knowledge file) and build it; errors name `source`."""
    if not isinstance(data, Mapping):
        raise KnowledgeFileError(f"{source}: top level must be a mapping")
    _known(data, _TOP_KEYS, source)
    raw_entries = data.get("entries")
    if not isinstance(raw_entries, list) or not raw_entries:
        raise KnowledgeFileError(f"{source}: entries must be a non-empty list")
    entries = [_entry(raw, f"{source}: entries[{i}]") for i, raw in enumerate(raw_entries)]
    product = data.get("product")
    seen_ids: set[str] = set()
    seen_questions: dict[str, str] = {}
    for i, e in enumerate(entries):
        if e.id in seen_ids:
            raise KnowledgeFileError(f"{source}: entries[{i}] ({e.id}): duplicate id")
        seen_ids.add(e.id)
        for q in e.questions:
            if q in seen_questions:
                raise KnowledgeFileError(
                    f"{source}: entries[{i}] ({e.id}): question {q!r} is also in "
                    f"{seen_questions[q]} (a question must lead to one answer)"
                )
            seen_questions[q] = e.id
    return KnowledgeFile(
        name=_string(data.get("name"), f"{source}: name"),
        product=_string(product, f"{source}: product") if product is not None else "",
        entries=tuple(entries),
        sha256=sha256,
    )


def load_knowledge(path: str | Path) -> KnowledgeFile:
    """Read and check the knowledge file at `path` (``KnowledgeFileError``: one line)."""
    p = Path(path)
    try:
        data = load_yaml(p, what="knowledge file")
        digest = hashlib.sha256(p.read_bytes()).hexdigest()
    except YamlLoadError as exc:
        raise KnowledgeFileError(str(exc)) from None
    except OSError as exc:
        raise KnowledgeFileError(f"{p}: cannot read the knowledge file: {exc.strerror}") from None
    return parse_knowledge(data, source=str(p), sha256=digest)
