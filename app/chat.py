"""``main.py chat --script FILE``: try a script by typing as the callee, no call placed.

One stdin line is one callee turn (so it also runs from a pipe: ``printf '喂\\n多少钱\\n' |
main.py chat --script …``); an empty line is silence (``NoInput``). Each turn goes through the
same parts a call uses: the configured intent model (with the script's own intents), the
knowledge base when the script names a knowledge file (``callflow.knowledge.lookup``), and the
pure machine (``callflow.machine.step``); the robot's lines are printed instead of spoken,
with the lead's fields put in when the script is personal. For each turn it prints the intent
and its confidence, the slots, the scores, the clarification decision, the knowledge entry,
the state change and the reply; at the end the outcome and grade. Exit 0 (1 for a bad
``--lead``; a script that does not load is main.py's one-line config error).
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from app.config import Config
from app.engines import make_knowledge, make_nlu
from callflow.knowledge import detail, lookup
from callflow.machine import (
    Action,
    Answered,
    DialogState,
    Event,
    Finish,
    NoInput,
    PlaybackFinished,
    Say,
    UserSaid,
    step,
)
from callflow.personal import lead_fields
from callflow.script import Script
from callflow.script_parse import load_script
from core.text import canonical
from nlu.base import INTENTS, IntentClassifier
from nlu.knowledge.base import KnowledgeBase


class LeadSpecError(ValueError):
    """A ``--lead`` that is not FIELD=VALUE pairs, a JSON object or a CSV row."""


def parse_lead(spec: str | None) -> dict[str, str]:
    """The lead's columns from ``name=王伟,gender=男``, ``{"name": …}`` or ``FILE.csv[:ROW]``
    (ROW counts data rows from 1; default 1)."""
    if not spec:
        return {}
    if spec.lstrip().startswith("{"):
        try:
            data = json.loads(spec)
        except json.JSONDecodeError as exc:
            raise LeadSpecError(f"--lead: not a JSON object: {exc.msg}") from None
        if not isinstance(data, dict):
            raise LeadSpecError("--lead: JSON must be an object of field: value")
        return {str(k): str(v) for k, v in data.items() if v is not None}
    path, _, row = spec.rpartition(":") if spec.rsplit(":", 1)[-1].isdigit() else (spec, "", "")
    if path.lower().endswith(".csv") or Path(spec).is_file():
        return _csv_row(Path(path or spec), int(row or 1))
    out = {}
    for pair in spec.split(","):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise LeadSpecError(f"--lead: {pair!r} is not FIELD=VALUE")
        out[key.strip()] = value.strip()
    return out


def _csv_row(path: Path, row: int) -> dict[str, str]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            for i, record in enumerate(csv.DictReader(f), start=1):
                if i == row:
                    return {str(k): str(v) for k, v in record.items() if k and v}
    except OSError as exc:
        raise LeadSpecError(f"--lead: cannot read {path}: {exc.strerror}") from None
    raise LeadSpecError(f"--lead: {path} has no data row {row}")


def _initial_state(lead: Mapping[str, str]) -> DialogState:
    """A fresh call's state, holding the lead's fields (``callflow.personal``)."""
    if not lead:
        return DialogState()
    extra = {k: v for k, v in lead.items() if k != "name"}
    return DialogState(lead=lead_fields(lead.get("name"), extra))


class Chat:
    """One simulated call: the machine's state, stepped by typed turns."""

    def __init__(
        self,
        script: Script,
        nlu: IntentClassifier,
        knowledge: KnowledgeBase | None,
        out: TextIO,
        *,
        lead: Mapping[str, str] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        self.script = script
        self.nlu = nlu
        self.knowledge = knowledge
        self.out = out
        self.state = _initial_state(lead or {})
        self._context = dict(context or {})

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def _apply(self, event: Event) -> None:
        self.state, actions = step(self.script, self.state, event)
        self._play(actions)

    def _play(self, actions: list[Action]) -> None:
        """Print what the robot does; its last line plays to its end (an ending hangs up)."""
        self._show(actions)
        said = [a for a in actions if isinstance(a, Say)]
        if said:
            self.state, more = step(self.script, self.state, PlaybackFinished(said[-1].say_id))
            self._show(more)

    def _show(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Say):
                self._print(f"robot: {action.text}")
            elif isinstance(action, Finish):
                grade = action.grade.value if action.grade else "-"
                self._print(f"outcome: {action.outcome.value}  grade: {grade}")
            else:
                self._print(f"action: {type(action).__name__} {_fields(action)}")

    def start(self) -> None:
        self._apply(Answered())

    @property
    def ended(self) -> bool:
        return self.state.ended or self.state.ending

    def turn(self, line: str) -> None:
        """One callee turn: silence for an empty line, else understood and stepped."""
        text = canonical(line)
        self._print(f"callee: {line.strip() or '(silence)'}")
        before = self.state.node
        if not text:
            self.state, actions = step(self.script, self.state, NoInput())
            self._print(f"  state: {before} -> {self.state.node}")
            self._play(actions)
            return
        node = self.script.states.get(before)
        expected = self.script.expected(node) if node is not None else ()
        context = {**self._context, "state": before, "expected": expected}
        res = self.nlu.classify(text, context)
        slots = dict(res.slots)
        scores = slots.pop("sentiment", None)
        answer = lookup(self.knowledge, self.script, self.state, res.intent, text, {})
        margin = "" if res.margin is None else f", margin {res.margin:.2f}"
        self._print(f"  intent: {res.intent} ({res.confidence:.2f}{margin})")
        self._print(f"  slots: {_json(slots)}")
        self._print(f"  scores: {_json(scores or {})}")
        if self.knowledge is not None and _asks_knowledge(self, res.intent, before):
            self._print(f"  knowledge: {_json(detail(answer))}")
        said = UserSaid(
            res.intent, res.confidence, text, slots, res.margin, answer.text if answer else None
        )
        self.state, actions = step(self.script, self.state, said)
        handled = self.state.handled
        if handled is not None:
            about = f" (answers {handled.answers})" if handled.answers else ""
            self._print(f"  clarify: {handled.decision} {handled.intent}{about}")
        self._print(f"  state: {before} -> {self.state.node}")
        self._play(actions)


def _asks_knowledge(chat: Chat, intent: str, node: str) -> bool:
    state = chat.script.states.get(node)
    handler = chat.script.handler(state, intent) if state is not None else None
    return handler is not None and handler.answer == "knowledge"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)


def _fields(action: Action) -> str:
    return _json(dataclasses.asdict(action)) if dataclasses.is_dataclass(action) else ""


def chat_main(
    cfg: Config, script_path: Path, lead_spec: str | None, stdin: TextIO, out: TextIO
) -> int:
    """Run the simulator over `stdin` until the machine ends or the input does."""
    try:
        lead = parse_lead(lead_spec)
    except LeadSpecError as exc:
        print(f"chat: {exc}", file=out)
        return 1
    script = load_script(script_path, known_intents=INTENTS, require_disclosure=False)
    nlu = make_nlu(cfg)
    knowledge = make_knowledge(cfg, script, nlu)
    if script.intents:  # the script's own few-shot intents, as in a call
        from nlu import with_custom_intents

        nlu = with_custom_intents(nlu, script.intents)
    chat = Chat(script, nlu, knowledge, out, lead=lead, context={"timezone": cfg.campaign.timezone})
    print(f"script {script.name} ({script_path}); type the callee's lines", file=out)
    chat.start()
    for line in stdin:
        if chat.ended:
            break
        chat.turn(line)
    if not chat.ended:
        print(f"(input ended; the call would go on in state {chat.state.node})", file=out)
    return 0
