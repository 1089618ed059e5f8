"""The call's gate: nothing is said until the screening lets the greeting through.

`Gate` drives ``callflow.screening`` over a live call, before ``CallSession`` speaks:

- ``early(events)``: waits for the answer like ``progress.wait_answered`` while screening the
  early media (183 Session Progress audio). An announcement heard there (空号, 关机, ...) hangs
  the call up at once (CANCEL) instead of waiting for the ring timeout; one that was still
  being decoded when the carrier ended the call is settled from what was heard.
- ``answered()``: screens the first seconds after the answer and returns the `Verdict`: a
  person (greet now) or a machine (end the call; it never hears the pitch).
- ``watch()``: a `Watch` the conversation feeds for ``watch_s`` more: a machine that answered
  like a person (a voicemail opening with a short 您好 and a pause) is caught by its beep or
  its phrase while the greeting plays; it also tells when a voicemail's greeting is over, so
  the script's message (``callflow.voicemail``) goes after the beep.

The gate owns one recognizer stream for both phases (closed by ``aclose``; the conversation
opens its own, so what the screening heard, "喂，你好" included, is never taken as a turn) and
one `CueAnalyzer` per phase. Frames are read from ``call.audio()``, which the conversation
reads on afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace

from speech.asr.base import AsrStreamError, Final, Partial, RecognizeStream, StreamingAsr
from speech.cues import CueAnalyzer, Cues
from telephony.base import FRAME_BYTES, CallEvent, CallHandle, Progress

from .progress import wait_answered
from .results import TurnRecord
from .screening import Kind, ScreenConfig, Screener, Verdict, match_text

log = logging.getLogger(__name__)

NO_AUDIO_S = 0.5  # no frame at all this long after the answer: nothing to screen
SETTLE_S = 2.0  # after early media ends, wait this long for the last transcript
BEEP_SILENCE_S = 2.0  # a voicemail greeting silent this long has no beep coming
# No decoding prompt by default: a prompt of the carriers' phrases made Whisper base hear
# them in a person's "喂，你好" (measured on espeak audio), and one wrong "announcement" hangs
# up on a person. The phrase table matches by sound instead.
SCREEN_PROMPT: str | None = None


@dataclass(frozen=True, slots=True)
class Screening:
    """What a session needs to screen its calls: a cue analyzer per phase (``speech.amd``,
    handed in: callflow never imports an engine), the timing, the recognizer's prompt."""

    make_cues: Callable[[], CueAnalyzer]
    config: ScreenConfig = field(default_factory=ScreenConfig)
    asr_prompt: str | None = SCREEN_PROMPT


def screening_turn(verdict: Verdict, heard: list[str]) -> TurnRecord:
    """The record of a machine the screening heard (the callee's side; no robot turn)."""
    return TurnRecord(
        speaker="callee",
        text="".join(heard),
        intent=f"screen:{verdict.kind}",
        detail={"screening": str(verdict.kind), "reason": verdict.reason, "at_s": verdict.at_s},
    )


def screened_end(end: Progress | None, verdict: Verdict | None) -> Progress | None:
    """The line's end with the disposition the screening heard (a machine), else as is."""
    kind = verdict.kind if verdict is not None else None
    if end is None or kind is None or kind.disposition is None:
        return end
    return replace(end, end_reason=kind.disposition)


def voicemail_kind(texts: list[str]) -> Kind:
    """What a call the conversation ended as voicemail (the NLU's rule) heard: the kind of
    announcement its callee turns name, else plain voicemail."""
    for text in texts:
        match = match_text(text)
        if match is not None:
            return match.kind
    return Kind.VOICEMAIL


class Watch:
    """The first seconds after the greeting started: a machine that answered like a person
    (a voicemail opening with a short 您好 and a pause) is caught by its beep or its phrase.

    Fed by the conversation (``push`` each callee frame, ``hear`` its recognizer's texts);
    ``push`` returns the machine's `Verdict` once, then None. After the window it only keeps
    tracking the beep and the silence (``greeting_over``), for a message left after them.
    """

    def __init__(self, cues: CueAnalyzer, window_s: float) -> None:
        self._cues = cues
        self.window_s = window_s
        self.verdict: Verdict | None = None
        self.heard: list[str] = []
        # the record beep, or the greeting over (BEEP_SILENCE_S quiet): a message may start
        self.greeting_over = asyncio.Event()

    @property
    def active(self) -> bool:
        """Still screening (inside the window, no verdict yet)."""
        return self.verdict is None and self._cues.cues().t < self.window_s

    def hear(self, text: str, *, final: bool) -> Verdict | None:
        """A transcript of the conversation's recognizer: the machine's `Verdict` when it
        names one (once), else None."""
        if final and text:
            self.heard.append(text)
        if not self.active:
            return None
        match = match_text(text)
        if match is None or match.generic or (match.guessed and not final):
            return None
        t = self._cues.cues().t
        self.verdict = Verdict(match.kind, t, "late_text", match.phrase)
        return self.verdict

    def push(self, frame: bytes) -> Verdict | None:
        if len(frame) != FRAME_BYTES:
            return None
        active = self.active
        self._cues.push(frame)
        cues = self._cues.cues()
        if cues.beep_t is not None or (cues.tone_s == 0 and cues.silence_s >= BEEP_SILENCE_S):
            self.greeting_over.set()
        if not active:
            return None
        if cues.beep_t is not None:
            self.verdict = Verdict(Kind.VOICEMAIL, cues.t, "late_beep")
        return self.verdict


class Gate:
    """Screens one call's early media and first seconds (see the module docstring)."""

    def __init__(
        self,
        call: CallHandle,
        *,
        asr: StreamingAsr,
        screening: Screening,
        language: str | None = None,
    ) -> None:
        self.call = call
        self.config = screening.config
        self._asr = asr
        self._asr_prompt = screening.asr_prompt
        self._language = language
        self._make_cues = screening.make_cues
        self._stream: RecognizeStream | None = None
        self._hearing: asyncio.Task[None] | None = None
        self._closed = False
        self._screener = Screener(self.config, answered=False)
        self._cues = self._make_cues()
        self.heard: list[str] = []  # finals the screening heard (turn record only)
        self.early_verdict: Verdict | None = None  # a machine heard in early media
        self.early_frames = 0

    # ---- early media --------------------------------------------------------------------

    async def early(self, events: AsyncIterator[CallEvent]) -> Progress | None:
        """The ANSWERED or ENDED progress (None: events ran out), screening early media."""
        listen = asyncio.create_task(self._listen_early(), name=f"call[{self.call.call_id}].early")
        try:
            progress = await wait_answered(events)
        finally:
            listen.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listen
        ended = progress is not None and progress.end_reason is not None
        if ended and self.early_verdict is None and self.early_frames:
            await self._settle_early()  # the carrier ended it before the words were decoded
        return progress

    async def _listen_early(self) -> None:
        async for frame in self.call.audio():
            if len(frame) != FRAME_BYTES:
                continue
            self.early_frames += 1
            self._push(frame)
            verdict = self._screener.decide(self._cues.cues())
            if verdict is not None and verdict.machine:
                self.early_verdict = verdict
                log.info(
                    "early media screened: %s",
                    verdict.kind,
                    extra={"call": self.call.call_id},
                )
                await self.call.hangup()  # CANCEL: ENDED reaches wait_answered
                return

    async def _settle_early(self) -> None:
        """The carrier ended the call mid-announcement: decode what was heard, then judge."""
        if self._stream is not None:
            self._stream.end_input()
        if self._hearing is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SETTLE_S):
                    await asyncio.shield(self._hearing)
        verdict = self._screener.settle(self._cues.cues())
        if verdict.machine:
            self.early_verdict = verdict

    # ---- after the answer ---------------------------------------------------------------

    async def answered(self) -> Verdict:
        """The verdict of the first seconds after the answer (a person: greet now)."""
        self._screener = Screener(self.config, answered=True)
        self._cues = self._make_cues()
        audio = aiter(self.call.audio())
        while True:
            try:
                async with asyncio.timeout(NO_AUDIO_S):
                    frame = await anext(audio)
            except (TimeoutError, StopAsyncIteration):
                return self._screener.settle(self._cues.cues())
            if len(frame) != FRAME_BYTES:
                continue
            self._push(frame)
            verdict = self._screener.decide(self._cues.cues())
            if verdict is not None:
                return verdict

    def watch(self, *, go_on: bool = False) -> Watch:
        """The watch over the first seconds of the conversation (``ScreenConfig.watch_s``);
        `go_on`: no more screening, the answered phase's cues carry on (a voicemail heard,
        its beep awaited)."""
        if go_on:
            return Watch(self._cues, 0.0)
        return Watch(self._make_cues(), self.config.watch_s)

    # ---- shared: frames, transcripts ------------------------------------------------------

    def _push(self, frame: bytes) -> None:
        self._cues.push(frame)
        stream = self._open()
        if stream is not None:
            stream.push(frame)

    def _open(self) -> RecognizeStream | None:
        """The screening's recognizer stream, opened on the first frame."""
        if self._stream is None and not self._closed:
            self._stream = self._asr.stream(prompt=self._asr_prompt, language=self._language)
            self._hearing = asyncio.create_task(
                self._hear(self._stream), name=f"call[{self.call.call_id}].screen_asr"
            )
        return self._stream

    async def _hear(self, stream: RecognizeStream) -> None:
        try:
            async for ev in stream:
                if isinstance(ev, Partial):
                    self._screener.hear(ev.text, final=False)
                elif isinstance(ev, Final):
                    self._screener.hear(ev.text, final=True)
                    if ev.text:
                        self.heard.append(ev.text)
        except AsrStreamError:
            log.warning("screening recognizer failed", extra={"call": self.call.call_id})

    def cues(self) -> Cues:
        return self._cues.cues()

    async def aclose(self) -> None:
        """Close the screening's recognizer (idempotent)."""
        stream, hearing = self._stream, self._hearing
        self._stream, self._hearing, self._closed = None, None, True
        if stream is not None:
            await stream.aclose()
        if hearing is not None:
            hearing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await hearing
