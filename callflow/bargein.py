"""Barge-in that respects backchannels: what a callee's speech onset does to the robot's line.

People say 嗯, 对, 好的 while listening; cutting the robot off at each one, and then answering
it as a turn, is what makes robots unbearable. So an onset while the robot talks (on a part of
the line that may be interrupted) *pauses* the line at once: the media worker holds the queued
audio and sends silence, which keeps the stop at the RTP edge fast. Then, in the callee's time:

- the speech goes on past ``backchannel_max_s``: a real barge-in, the line is stopped (the
  held audio dropped: the turn records only what was played);
- it ends sooner and its transcript is a backchannel (``is_backchannel``: made only of the
  configured words, or empty: a cough, line noise), or is heard with a confidence under
  ``unclear_below``: the line resumes where it paused and the utterance is not a turn;
- it ends sooner with any other words (停, 不用了, 你是谁): stopped, and it is a turn;
- no end of speech within ``backchannel_max_s + final_wait_s`` of the onset (the endpointer
  tells the end only after its silence): stopped;
- no transcript within ``final_wait_s`` of a short utterance's end (a slow recognizer): the
  line resumes, a short sound being most likely a backchannel; words that come later and are
  not one still cut the line then, and are a turn.

A backchannel heard while the line cannot be paused (a non-interruptible part) is not a turn
either. ``backchannel_max_s`` 0 turns pausing off: every onset stops the line at once.

A script marks a line, or parts of one, non-interruptible (``parse_say``)::

    say:
      - text: 您好，我是云启科技的AI语音助手，本次通话可能会被录音。
        interruptible: false
      - 想跟您简单介绍一下我们的产品，您现在方便吗？
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from speech.asr.base import Final

__all__ = [
    "DEFAULT_BACKCHANNELS",
    "BargeIn",
    "BargeInPolicy",
    "Segment",
    "parse_backchannels",
    "parse_say",
]

Segment = tuple[str, bool]  # a part of a robot line, and whether the callee may interrupt it

# Listening noises and acknowledgements that do not ask for the floor (canonical text, no
# punctuation). Combinations of them (嗯嗯, 对对对, 嗯好的) count too.
DEFAULT_BACKCHANNELS = frozenset(
    {"嗯", "嗯嗯", "恩", "唔", "啊", "哦", "噢", "喔", "欸", "诶", "哎", "呃", "额", "嗯哼"}
    | {"对", "对的", "是", "是的", "好", "好的", "行", "没错", "明白", "了解", "知道了", "收到"}
)
_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)
_MAX_BACKCHANNEL_CHARS = 8
_TOLERANCE_S = 0.05  # stream-time slack when matching a transcript to the held onset


@dataclass(frozen=True, slots=True)
class BargeInPolicy:
    """The barge-in knobs (``app.config.CallflowConfig``: ``barge_in_*``, ``backchannels``)."""

    backchannel_max_s: float = 0.8  # longer speech is a barge-in; 0: stop at every onset
    final_wait_s: float = 2.0  # a short utterance's end and words are awaited this long
    backchannels: frozenset[str] = DEFAULT_BACKCHANNELS
    unclear_below: float = 0.4  # a short utterance heard with less confidence: not a bid

    def is_backchannel(self, text: str) -> bool:
        """True when `text` is empty (noise) or made only of backchannel words."""
        key = _NOT_WORD.sub("", text)
        if len(key) > _MAX_BACKCHANNEL_CHARS:
            return False
        longest = max((len(w) for w in self.backchannels), default=0)
        ends = [True] + [False] * len(key)  # ends[i]: key[:i] splits into backchannel words
        for i in range(1, len(key) + 1):
            ends[i] = any(
                ends[i - n] and key[i - n : i] in self.backchannels
                for n in range(1, min(longest, i) + 1)
            )
        return ends[-1]

    def short(self, final: Final) -> bool:
        return final.end_t - final.start_t <= self.backchannel_max_s + _TOLERANCE_S

    def ignorable(self, final: Final) -> bool:
        """A short utterance that is a backchannel, or too unclear to be a bid for the floor
        (a one-syllable 嗯 that the recognizer turns into "4" or "诶" with low confidence)."""
        return self.short(final) and (
            self.is_backchannel(final.text) or final.confidence < self.unclear_below
        )


def parse_backchannels(raw: str) -> frozenset[str]:
    """A comma list from the config ("嗯,对,好的"); empty: the defaults."""
    words = frozenset(_NOT_WORD.sub("", w) for w in raw.split(",")) - {""}
    return words or DEFAULT_BACKCHANNELS


def parse_say(raw: Any, interruptible: bool) -> tuple[str, tuple[Segment, ...]]:
    """A state's ``say``: a string, or a list of parts, each a string (interruptible) or
    ``{text, interruptible}``. Returns the whole line and its parts (() for a plain string);
    a state that is not interruptible makes every part so. Raises ValueError."""
    if isinstance(raw, str):
        return raw, ()
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"must be a string or a list of parts, got {type(raw).__name__}")
    parts: list[Segment] = []
    for i, item in enumerate(raw):
        text, may_cut = _part(item, i)
        parts.append((text, may_cut and interruptible))
    return "".join(text for text, _ in parts), tuple(parts)


def _part(item: Any, i: int) -> Segment:
    if isinstance(item, str) and item:
        return item, True
    if not isinstance(item, Mapping) or set(item) - {"text", "interruptible"}:
        raise ValueError(f"part {i} must be a string or a mapping of text and interruptible")
    text, may_cut = item.get("text"), item.get("interruptible", True)
    if not isinstance(text, str) or not text:
        raise ValueError(f"part {i}.text must be a non-empty string")
    if not isinstance(may_cut, bool):
        raise ValueError(f"part {i}.interruptible must be true or false")
    return text, may_cut


class Line(Protocol):
    """What the policy needs of a robot line (``callflow.playback.Playback``)."""

    @property
    def done(self) -> bool: ...

    def pause(self, onset: float) -> bool: ...

    def resume(self) -> None: ...

    def interrupt(self) -> bool: ...

    def note(self, key: str, value: Any) -> None: ...


@dataclass(slots=True)
class _Held:
    line: Line
    start_t: float  # stream time the speech began
    timer: asyncio.TimerHandle | None = None


class BargeIn:
    """One call's barge-in decisions (the session feeds it recognizer events)."""

    def __init__(
        self, policy: BargeInPolicy, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.policy = policy
        self._now = clock
        self._held: _Held | None = None
        self._unheard: _Held | None = None  # resumed before its words came (see `final`)

    @property
    def holding(self) -> bool:
        return self._held is not None

    def onset(self, line: Line | None, start_t: float, onset: float) -> None:
        """Speech began at stream time `start_t` (arrived at clock time `onset`)."""
        if line is None or line.done or self._held is not None:
            return
        max_s = self.policy.backchannel_max_s
        if max_s <= 0:
            if line.interrupt():
                line.note("barge_in", "stopped")
            return
        if not line.pause(onset):
            return  # not interruptible here: it plays through
        self._held = _Held(line, start_t)
        # the end of speech is known only after the endpointer's silence: until then the
        # robot stays paused (quiet), and only speech still unended by now is surely long
        self._arm(max_s + self.policy.final_wait_s - (self._now() - onset), "long")

    def speech_ended(self, end_t: float) -> None:
        """The held utterance ended at stream time `end_t`: wait for its words, or stop."""
        held = self._held
        if held is None:
            return
        if end_t - held.start_t > self.policy.backchannel_max_s + _TOLERANCE_S:
            self._stop("long")
        else:
            self._arm(self.policy.final_wait_s, "no_transcript")

    def final(self, final: Final, playing: Line | None) -> bool:
        """A transcript arrived; True when it is a backchannel (not a turn)."""
        backchannel = self.policy.ignorable(final)
        held = self._held
        if held is not None and final.end_t >= held.start_t - _TOLERANCE_S:
            if not backchannel:
                self._stop("speech")
                return False
            self._release(held)
            held.line.resume()
            held.line.note("backchannels", final.text)
            return True
        late = self._unheard
        if late is not None and final.end_t >= late.start_t - _TOLERANCE_S:
            self._unheard = None
            if not backchannel:
                if late.line.interrupt():  # its words came late, and they were a bid after all
                    late.line.note("barge_in", "late_words")
                return False
        if backchannel and playing is not None and not playing.done:
            playing.note("backchannels", final.text)  # over a part that plays through
            return True
        return False

    def settled(self, line: Line) -> None:
        """`line` is over (played, cut, or the call ended): forget it."""
        if self._held is not None and self._held.line is line:
            self._release(self._held)
        if self._unheard is not None and self._unheard.line is line:
            self._unheard = None

    def close(self) -> None:
        if self._held is not None:
            self._release(self._held)

    def _arm(self, delay_s: float, reason: str) -> None:
        held = self._held
        if held is None:
            return
        if held.timer is not None:
            held.timer.cancel()
        held.timer = asyncio.get_running_loop().call_later(max(0.0, delay_s), self._stop, reason)

    def _stop(self, reason: str) -> None:
        held = self._held
        if held is None:
            return
        self._release(held)
        if reason == "no_transcript":  # short speech, words slow to come: most likely 嗯
            self._unheard = held
            held.line.resume()
        elif held.line.interrupt():
            held.line.note("barge_in", reason)

    def _release(self, held: _Held) -> None:
        if held.timer is not None:
            held.timer.cancel()
        if self._held is held:
            self._held = None
