"""Sales scripts (话术) in YAML: states with a line to say and where each intent leads.

A state either *asks* (says its line, then waits for the callee) or *ends* (says its line,
then hangs up with an outcome). `global` handlers apply in every asking state unless the
state has its own handler for that intent. A handler is a target state name, or a mapping:
  {goto: state}          move on
  {say: text}            answer in place and stay (e.g. "who are you?")
  {repeat: true}         say the current line again
  {transfer: agent}      hand the call to a person: say ``transfer.say``, then transfer to the
                         target named ``agent`` (its SIP URI is deployment config); if nobody
                         answers, enter the ``transfer.failed`` state (``callflow.transfer``)
  {send_dtmf: "1#"}      send DTMF digits (navigate an IVR); may come with ``goto``

DTMF from the callee (``callflow.transfer``): ``dtmf:`` maps a key to an intent, per state and at
the top level (a state's own mapping wins), e.g. ``dtmf: {"1": request_human, "2":
complaint_dnc}``; a mapped key is taken as that intent, heard with certainty.

``recording_notice:`` is a line said before the greeting (本次通话可能会被录音); a node that
records calls loads scripts with ``require_recording_notice`` and refuses one without it.

An ending state's ``end:`` names a ``core.vocab.Outcome`` and a qualified ending may carry a
``grade:`` (``core.vocab.Grade``: A-D); any other value is a ScriptError.

Clarification (``callflow.clarify``): ``clarify_below`` is the confidence under which a reply is
not acted on as heard (default 0.6; 0 turns clarification off), and ``confirm`` maps an intent to
the one short question that confirms it ("您是想了解价格吗？"); a weak reply whose intent has no
question there is acted on as before.

Decoder hints: ``asr_hints:`` lists replies callees typically give; joined, they are the
recognizer's decoding prompt when the node's ``speech.asr_hints`` is on (off by default). A
state may have its own ``asr_hints:`` (what is said after *its* line); while the call is in
that state they replace the script's (``Script.prompt_for``).

Personal lines (``callflow.personal``): any line may name a lead field or a remembered slot,
``{lead.title|您}``, ``{lead.company|贵公司}``, ``{slot.time|改天}``; the text after ``|`` is
said when the field is missing, or the script gives one fallback per field under
``fallbacks: {lead.company: 贵公司}``. A placeholder with neither is a ScriptError, and so is an
unknown ``{name}`` (``vars:`` are constants, filled in at load). Lines with placeholders are
rendered in the call (``DialogState.lead`` / ``slots``); ``lines()`` pre-renders only their
neutral form (every field missing), never a lead's own.

Conditions (``callflow.when``; names from ``callflow.memory``: ``slot.X``, ``intent.X``,
``score.X`` / ``score.X_max`` / ``score.X_avg``, ``lead.X``, ``turns``, ``outcome``), e.g.
``"slot.budget > 5000 and not score.annoyance > 0.6"``. Unknown slots (``callflow.memory.SLOTS``
plus the script's own ``slots: [name, ...]``), intents or scores are ScriptErrors at load.
  - a handler may be a list tried in order, the first whose ``when:`` holds is taken (an item
    without ``when:`` always holds; none holding: the reply is unusable)::

        affirm: [{when: "slot.budget", goto: qualify}, {goto: ask_budget}]
        hesitate: [{when: "score.hesitation > 0.5", say: "现在签约有八折…"}, {goto: qualify}]

  - a state may be skipped: ``skip_if: "slot.team_size"`` with ``skip_to: next_state``
    (default: the state's ``default`` goto), so the robot never asks what it was told;
  - ``grading:`` rules give the lead's grade A-D when the outcome is known
    (``callflow.grading``): ``[{grade: A, when: "intent.book_meeting and
    slot.decision_maker"}, {grade: D, when: "true"}]``; no rule holding: the state's ``grade:``.

Layout: this module is the model (``ScriptError``, ``Handler``, ``State``, ``Script``,
``script_texts``); ``callflow.script_parse`` reads scripts into it: ``load_script`` (a file)
and ``parse_script`` (a loaded mapping), with every check.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.vocab import Grade, Outcome

from . import memory, personal
from .clarify import DEFAULT_THRESHOLD
from .grading import Rule
from .silence import Silence
from .voicemail import Voicemail
from .when import Condition

DEFAULT_CLARIFY_BELOW = DEFAULT_THRESHOLD  # measured: see callflow.clarify
DEFAULT_TRANSFER_SAY = "好的，正在为您转接人工顾问，请稍候。"

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


class ScriptError(ValueError):
    """A script file that cannot run; the message names the file and the place."""


@dataclass(frozen=True, slots=True)
class Handler:
    goto: str | None = None
    say: str | None = None
    repeat: bool = False
    transfer: str | None = None  # a transfer target's name
    send_dtmf: str | None = None  # digits to send (with `goto` or alone)
    answer: str | None = None  # "knowledge": answer in place from the script's knowledge file
    fallback: str | None = None  # said in place when the knowledge file has no answer
    # a handler list: (condition or None, handler) tried in order (``pick``)
    branches: tuple[tuple[Condition | None, Handler], ...] = ()

    def pick(self, env: Mapping[str, Any]) -> Handler | None:
        """The handler to act on in `env` (``callflow.memory.environment``): itself, or the
        first branch whose condition holds (None: no branch holds)."""
        if not self.branches:
            return self
        for cond, h in self.branches:
            if cond is None or cond.holds(env):
                return h
        return None

    def flat(self) -> tuple[Handler, ...]:
        """Itself, or its branches' handlers (for checks and the fixed lines)."""
        return tuple(h for _, h in self.branches) if self.branches else (self,)


@dataclass(frozen=True, slots=True)
class State:
    name: str
    say: str
    on: Mapping[str, Handler] = field(default_factory=dict)
    default: Handler | None = None  # for intents with no handler ("other" included)
    end: Outcome | None = None  # outcome, for an ending state
    grade: Grade | None = None  # lead grade for qualified endings
    interruptible: bool = True
    # the line's parts when some may not be interrupted (callflow.bargein.parse_say); () = one
    segments: tuple[tuple[str, bool], ...] = ()
    dtmf: Mapping[str, str] = field(default_factory=dict)  # key -> intent
    asr_prompt: str | None = None  # the state's own ``asr_hints:``; None: the script's
    skip_if: Condition | None = None  # entering it when this holds goes on to `skip_to`
    skip_to: str | None = None


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
    silence: Silence | None = None  # the silent-callee path (callflow.silence); None: reprompt
    voicemail: Voicemail | None = None  # a message left after the beep (callflow.voicemail)
    dtmf: Mapping[str, str] = field(default_factory=dict)  # key -> intent, in every state
    transfer_say: str = DEFAULT_TRANSFER_SAY  # said before a transfer
    transfer_failed: str | None = None  # state entered when the agent did not answer
    recording_notice: str | None = None  # said before the greeting
    knowledge: str | None = None  # the knowledge file (path; ``answer: knowledge`` handlers)
    grading: tuple[Rule, ...] = ()  # callflow.grading
    fallbacks: Mapping[str, str] = field(default_factory=dict)  # "lead.company" -> 贵公司
    slots: frozenset[str] = memory.SLOTS  # slots conditions and lines may name

    def lines(self) -> list[str]:
        """Every fixed line the script can say (rendered once per campaign)."""
        out = [self.reprompt]
        for st in self.states.values():
            out.append(st.say)
            out.extend(h.say for hs in st.on.values() for h in hs.flat() if h.say)
        out.extend(h.say for hs in self.global_on.values() for h in hs.flat() if h.say)
        out.extend(self.confirm.values())
        for st in self.states.values():  # a line in parts is spoken (and cached) part by part
            out.extend(text for text, _ in st.segments)
        if self.silence is not None:
            out.extend((self.silence.prompt, self.silence.goodbye))
        out.extend(x for x in (self.recording_notice, self.transfer_say) if x)
        if self.voicemail is not None:
            out.append(self.voicemail.leave_message)
        every = [self.global_on, *(st.on for st in self.states.values())]
        out.extend(h.fallback for hs in every for x in hs.values() for h in x.flat() if h.fallback)
        # a personal line is rendered per call (callflow.personal); only its neutral form (every
        # field missing: no PII) is a fixed line
        fixed = (personal.render(x, lead={}, slots={}, fallbacks=self.fallbacks) for x in out if x)
        return list(dict.fromkeys(x for x in fixed if x))

    def handler(self, state: State, intent: str) -> Handler | None:
        if intent in state.on:
            return state.on[intent]
        if intent in self.global_on:
            return self.global_on[intent]
        return state.default

    def expected(self, state: State) -> tuple[str, ...]:
        """The intents `state` handles itself or through ``global`` (a prior for the NLU)."""
        return tuple(dict.fromkeys([*state.on, *self.global_on]))

    def prompt_for(self, node: str | None, default: str | None) -> str | None:
        """The recognizer's decoding prompt while in state `node`: the state's own
        ``asr_hints``, else `default` (the call's prompt: the script's ``asr_hints``)."""
        state = self.states.get(node) if node is not None else None
        if state is not None and state.asr_prompt is not None:
            return state.asr_prompt
        return default

    def digit_intent(self, state: State | None, digit: str) -> str | None:
        """The intent a DTMF key stands for in `state` (its own mapping, then the global)."""
        if state is not None and digit in state.dtmf:
            return state.dtmf[digit]
        return self.dtmf.get(digit)


def script_texts(script: Script) -> list[str]:
    """Every line the script can say, personal ones included (for checks)."""
    texts = [script.reprompt, *script.confirm.values()]
    for st in script.states.values():
        texts.append(st.say)
        handlers = [*st.on.values(), *([st.default] if st.default else [])]
        texts.extend(h.say or h.fallback or "" for x in handlers for h in x.flat())
    texts.extend(h.say or h.fallback or "" for x in script.global_on.values() for h in x.flat())
    return [t for t in texts if t]
