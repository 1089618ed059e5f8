"""Call screening: is a person on the line, or a machine (and which)? Pure, table-tested.

Before the robot says a word, the call's first audio is screened: the early media (183
Session Progress, where Chinese carriers play 空号 / 关机 / 停机 announcements) and the first
seconds after the answer. Two kinds of evidence feed one `Screener`:

- the transcript (recognizer partials and finals, canonical text), matched against `PHRASES`
  by characters and by folded toneless pinyin with a small edit distance (``core.pinyin``), so
  a phrase survives the homophone swaps of phone ASR (关机 ~ 关几);
- the audio cues of ``speech.cues`` (a beep, speech runs, silence).

Human first: once answered, the greeting may start as soon as a person is likely (a short
"喂，你好" then a pause) and at the latest at ``greet_cap_s``, unless the callee is talking
then (the robot waits for them, up to ``hold_max_s``). A machine heard before that ends the
call without a pitch: its `Kind` names the `Disposition` stored, which has its own retry rule
(``campaigns.retry``). In early media only the transcript decides: music and ringback tones
are not announcements.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Final

from core.pinyin import folded_syllables
from core.vocab import Disposition
from speech.cues import Cues


class Kind(enum.StrEnum):
    """Who (or what) answered."""

    HUMAN = "human"
    UNCERTAIN = "uncertain"  # nothing conclusive by the cap: treated as a person
    VOICEMAIL = "voicemail"
    INVALID_NUMBER = "invalid_number"
    POWERED_OFF = "powered_off"
    SUSPENDED = "suspended"
    UNREACHABLE = "unreachable"
    BUSY_IN_CALL = "busy_in_call"
    CALL_SCREENING = "call_screening"
    IVR = "ivr"

    @property
    def machine(self) -> bool:
        return self not in (Kind.HUMAN, Kind.UNCERTAIN)

    @property
    def disposition(self) -> Disposition | None:
        """How the line ended when this kind answered (None: a person, the call goes on)."""
        return Disposition(self.value) if self.machine else None


# Fixed phrases of carrier announcements, voicemail greetings, screening assistants and IVRs,
# most specific kind first ("您拨打的电话正在通话中，请稍后再拨" is busy, not a generic one).
PHRASES: Final[tuple[tuple[Kind, tuple[str, ...]], ...]] = (
    (Kind.INVALID_NUMBER, ("空号", "号码是空号", "号码不存在", "号码有误", "已注销", "查证后再拨")),
    (Kind.SUSPENDED, ("已停机", "停机", "暂停服务", "暂停使用", "已欠费")),
    (Kind.POWERED_OFF, ("已关机", "关机")),
    (Kind.BUSY_IN_CALL, ("正在通话中", "通话中", "占线")),
    (Kind.UNREACHABLE, ("暂时无法接通", "无法接通", "不在服务区", "无人接听")),
    (
        Kind.CALL_SCREENING,
        ("呼叫转移", "来电助理", "智能助理", "通话助理", "已为您转接", "短信形式通知", "机主"),
    ),
    (
        Kind.VOICEMAIL,
        ("提示音后", "嘀声后", "哔声后", "语音信箱", "语音留言", "请留言", "留言请按"),
    ),
    (Kind.IVR, ("请按", "请拨分机", "欢迎致电", "欢迎拨打", "按井号键", "按星号键")),
)
# The carrier's opening alone: an announcement, kind unknown (decides only on a final).
GENERIC: Final = ("您拨打的电话", "您拨打的用户", "您拨打的号码", "您呼叫的用户", "请稍后再拨")
_ENGLISH: Final[tuple[tuple[Kind, re.Pattern[str]], ...]] = tuple(
    (kind, re.compile(pattern, re.IGNORECASE))
    for kind, pattern in (
        (Kind.INVALID_NUMBER, r"does not exist|not in service|is not valid"),
        (Kind.POWERED_OFF, r"(?:powered?|switched) off"),
        (Kind.BUSY_IN_CALL, r"\bis busy\b"),
        (Kind.UNREACHABLE, r"not (?:be )?reachable|cannot be (?:reached|connected)|is unavailable"),
        (Kind.VOICEMAIL, r"leave (?:a|your) message|voice ?mail|after the (?:tone|beep)"),
        (Kind.IVR, r"\bpress (?:\d|one|two|zero|the)"),
    )
)


@dataclass(frozen=True, slots=True)
class Match:
    kind: Kind
    phrase: str  # the table's phrase that matched
    generic: bool = False  # only the carrier's opening: the kind is a guess
    guessed: bool = False  # the carrier's opening, the kind by a looser sound match


def _allowed_edits(syllables: int) -> int | None:
    """Edits tolerated when matching a phrase of this many syllables by sound (None: match
    by characters only: two syllables sound like too many words, 机主 like 记住)."""
    if syllables <= 2:
        return None
    return 0 if syllables <= 3 else 1 if syllables <= 6 else 2


def _near(phrase: list[str], text: list[str], edits: int) -> bool:
    """True when `phrase` occurs in `text` with at most `edits` syllable edits (approximate
    substring match: the edit distance against the best-matching span of `text`)."""
    if not phrase:
        return False
    prev = [0] * (len(text) + 1)  # a match may start anywhere in the text
    for i, p in enumerate(phrase, 1):
        cur = [i] + [0] * len(text)
        for j, t in enumerate(text, 1):
            cur[j] = min(prev[j - 1] + (p != t), prev[j] + 1, cur[j - 1] + 1)
        prev = cur
    return min(prev) <= edits


@dataclass(frozen=True, slots=True)
class _Entry:
    kind: Kind
    phrase: str
    sound: tuple[str, ...]


_TABLE: Final = tuple(
    _Entry(kind, phrase, tuple(folded_syllables(phrase)))
    for kind, phrases in PHRASES
    for phrase in phrases
)
_GENERIC: Final = tuple(_Entry(Kind.UNREACHABLE, p, tuple(folded_syllables(p))) for p in GENERIC)


def match_text(text: str) -> Match | None:
    """The first `PHRASES` kind `text` matches (by characters, then by sound, then English),
    else a carrier opening: with the kind whose phrase it comes nearest (`_nearest_kind`),
    else generic; else None."""
    if not text:
        return None
    sound = folded_syllables(text)
    for entries, generic in ((_TABLE, False), (_GENERIC, True)):
        for e in entries:
            edits = _allowed_edits(len(e.sound))
            if e.phrase in text or (edits is not None and _near(list(e.sound), sound, edits)):
                if generic:
                    return _nearest_kind(sound) or Match(e.kind, e.phrase, generic=True)
                return Match(e.kind, e.phrase)
        if not generic:
            for kind, pattern in _ENGLISH:
                if pattern.search(text):
                    return Match(kind, pattern.pattern)
    return None


def _nearest_kind(sound: list[str]) -> Match | None:
    """After a carrier's opening (您拨打的电话...) the text is an announcement: its kind is the
    phrase of three syllables or more it comes nearest by sound (`_sound_cost`), within one
    syllable's worth of errors (two for long phrases): 已关机 heard as 以关提 or 以弯起."""
    best: tuple[float, _Entry] | None = None
    for e in _TABLE:
        if len(e.sound) < 3:
            continue
        cost = _sound_cost(e.sound, sound)
        if cost <= (1.0 if len(e.sound) <= 6 else 2.0):
            score = cost / len(e.sound)
            if best is None or score < best[0]:
                best = (score, e)
    return None if best is None else Match(best[1].kind, best[1].phrase, guessed=True)


# Initials phone ASR confuses (after `core.pinyin.fold`); "" is a syllable with none (wan, yi).
_CLOSE_INITIALS: Final = tuple(
    frozenset(group) for group in ({"b", "p"}, {"d", "t"}, {"g", "k", ""}, {"j", "q", "x"})
)
_INITIALS: Final = ("b", "p", "m", "f", "d", "t", "l", "g", "k", "j", "q", "x", "r", "z", "c", "s")


def _split(syllable: str) -> tuple[str, str]:
    """(initial, final) of a folded syllable; y/w spelled out as the final's own vowel."""
    if syllable[:1] == "w":
        rest = syllable[1:]
        return "", rest if rest.startswith("u") else "u" + rest
    if syllable[:1] == "y":
        rest = syllable[1:]
        return "", rest if rest.startswith(("i", "u")) else "i" + rest
    for initial in _INITIALS:
        if syllable.startswith(initial) and len(syllable) > 1:
            return initial, syllable[1:]
    return "", syllable


def _syllable_cost(a: str, b: str) -> float:
    """0 for the same syllable, 0.5 for the same final after a close initial, else 1."""
    if a == b:
        return 0.0
    (ia, fa), (ib, fb) = _split(a), _split(b)
    if fa == fb and any(ia in g and ib in g for g in _CLOSE_INITIALS):
        return 0.5
    return 1.0


def _sound_cost(phrase: tuple[str, ...], text: list[str]) -> float:
    """The cheapest edit of `phrase` into a span of `text` (substitutions by
    `_syllable_cost`, insertions and deletions 1): `_near` with partial substitutions."""
    prev = [0.0] * (len(text) + 1)
    for i, p in enumerate(phrase, 1):
        cur = [float(i)] + [0.0] * len(text)
        for j, t in enumerate(text, 1):
            cur[j] = min(prev[j - 1] + _syllable_cost(p, t), prev[j] + 1, cur[j - 1] + 1)
        prev = cur
    return min(prev)


@dataclass(frozen=True, slots=True)
class ScreenConfig:
    """The screening's timing (seconds; after-answer times count from the answer)."""

    greet_cap_s: float = 1.5  # the greeting starts by then unless the callee is talking
    human_max_s: float = 1.5  # a first utterance at most this long ...
    human_pause_s: float = 0.4  # ... then this much silence: a person waiting for us
    hold_max_s: float = 4.0  # a talking callee delays the greeting at most until then
    monologue_s: float = 3.0  # talking this long without a pause from the answer: a machine
    monologue_onset_s: float = 1.0  # ... when it began this soon after the answer
    generic_wait_s: float = 10.0  # in early media, a carrier's opening alone decides by then
    watch_s: float = 10.0  # after a person verdict, a beep or a machine phrase still ends it

    def __post_init__(self) -> None:
        if not 0 < self.greet_cap_s <= self.hold_max_s:
            raise ValueError("screening needs 0 < greet_cap_s <= hold_max_s")
        if self.human_pause_s <= 0 or self.monologue_s <= 0 or self.watch_s < 0:
            raise ValueError("screening times must be positive")


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: Kind
    at_s: float  # stream seconds of the phase (since the answer, or the first early frame)
    reason: str  # "text", "beep", "short_greeting", "cap", "monologue", ...
    phrase: str = ""  # the table phrase, for a verdict by text

    @property
    def machine(self) -> bool:
        return self.kind.machine


class Screener:
    """One call phase's screening: `hear` transcripts, then ask `decide` with the latest cues.

    ``answered=False`` screens early media (only a transcript decides); ``answered=True``
    the first seconds after the answer (transcript, beep, speech runs, the cap).
    """

    def __init__(self, config: ScreenConfig | None = None, *, answered: bool) -> None:
        self.config = config or ScreenConfig()
        self.answered = answered
        self._match: Match | None = None
        self._generic: Match | None = None  # heard in a final
        self._opening: Match | None = None  # heard in a partial only
        self._generic_t: float | None = None  # stream time the generic final was first seen
        self._finals_after = 0  # finals heard after it (none naming the kind)

    def hear(self, text: str, *, final: bool) -> None:
        """A partial or final transcript of the callee's audio (canonical text)."""
        match = match_text(text)
        if final and self._generic is not None and self._match is None:
            self._finals_after += 1  # the announcement's next repetition, decoded
        if match is None or self._match is not None:
            return
        if not (match.generic or match.guessed) or (match.guessed and final):
            self._match = match  # a kind guessed by sound decides on a final only
        elif match.generic and final:
            self._generic = match
        else:
            self._opening = match

    def decide(self, cues: Cues) -> Verdict | None:
        """The verdict once there is one, else None (keep listening). In early media a
        carrier's opening alone (in a final) decides at the next final (the announcement's
        next repetition, which may name the kind) or ``generic_wait_s`` after it was heard;
        after the answer at once (nobody is greeted meanwhile)."""
        if self._match is not None:
            return Verdict(self._match.kind, cues.t, "text", self._match.phrase)
        if self._generic is not None:
            if self._generic_t is None:
                self._generic_t = cues.t
            waited = cues.t - self._generic_t >= self.config.generic_wait_s
            if self.answered or self._finals_after or waited:
                return Verdict(self._generic.kind, cues.t, "text", self._generic.phrase)
        if not self.answered:
            return None
        if cues.beep_t is not None:
            return Verdict(Kind.VOICEMAIL, cues.t, "beep")
        return self._by_timing(cues)

    def _by_timing(self, cues: Cues) -> Verdict | None:
        c = self.config
        if cues.speaking:
            onset = cues.first_speech_t if cues.first_speech_t is not None else cues.t
            if cues.runs == 1 and onset <= c.monologue_onset_s and cues.run_s >= c.monologue_s:
                if cues.t >= c.hold_max_s:
                    return Verdict(Kind.VOICEMAIL, cues.t, "monologue")
                return None
            return Verdict(Kind.UNCERTAIN, cues.t, "hold") if cues.t >= c.hold_max_s else None
        if cues.runs and cues.longest_run_s <= c.human_max_s and cues.silence_s >= c.human_pause_s:
            return Verdict(Kind.HUMAN, cues.t, "short_greeting")
        if cues.t >= c.greet_cap_s:
            return Verdict(Kind.HUMAN if cues.runs else Kind.UNCERTAIN, cues.t, "cap")
        return None

    def settle(self, cues: Cues) -> Verdict:
        """The verdict when the phase ends undecided (the call ended, the early media stopped):
        a generic carrier opening counts now, even from a partial; else uncertain."""
        verdict = self.decide(cues)
        if verdict is not None:
            return verdict
        opening = self._generic or self._opening
        if opening is not None:
            return Verdict(opening.kind, cues.t, "text", opening.phrase)
        return Verdict(Kind.UNCERTAIN, cues.t, "ended")
