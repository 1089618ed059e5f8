"""One handle per robot utterance: send its audio, pause, resume or cut it, learn how it ended.

``start`` sends the line as a task of the call's TaskGroup, part by part (a line may have parts
that cannot be interrupted, ``callflow.bargein.parse_say``): a cached part is queued in one
piece, a new one chunk by chunk as it is synthesised; a personal part (``Say.personal``: a
lead's name, what the callee said) is synthesised past the cache, so no PII is kept. A cue
before the first chunk makes the worker report when the line's first frame went out on RTP
(``started_t``: where the callee starts hearing it); a playout mark after each part tells which
part the callee is hearing, and the last one that all of it was heard.

``pause`` (the callee started speaking; a direct call, never a message queued behind audio)
makes the worker hold the rest and send silence; ``resume`` plays it on. ``interrupt`` stops the
sending at once, which closes the prompt stream (the rest of the line is not synthesised for
this call), and clears what the worker still had queued or held; its ``PlayoutCleared`` answer
says how much the callee heard, and the turn records only that (``heard_ms``, and the text
``heard`` in proportion to the audio; the whole line stays in ``detail["line"]``). The handle
is settled by its last mark, by that answer, or at once when cut before any audio was sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from core.audio import pcm_ms
from speech.tts.base import PromptSource
from telephony.base import (
    CallEvent,
    CallHandle,
    PlayoutCleared,
    PlayoutMark,
    PlayoutPaused,
    PlayoutStarted,
)

from .bargein import Segment
from .machine import Say
from .results import TurnRecord


class Playback:
    """A robot line on one call (``allow_interruptions``: some part of it may be cut)."""

    def __init__(
        self,
        call: CallHandle,
        say: Say,
        *,
        on_started: Callable[[Playback], None],
        on_finished: Callable[[Playback], None],
        on_heard: Callable[[Playback], None] | None = None,
    ) -> None:
        """`on_started`: its first audio is queued (``turn`` is set); `on_heard`: its first
        frame went out on the line (``started_t``); `on_finished`: it was heard to its end or
        cut short (``interrupted``, ``heard_ms``, and ``turn`` tell)."""
        self.say_id = say.say_id
        self.text = say.text
        self.kind = say.kind
        self.parts: tuple[Segment, ...] = say.parts()
        # parts carrying a lead's or slot's value (PII): spoken past the prompt cache
        self.personal = tuple(say.part_is_personal(i) for i in range(len(self.parts)))
        self.allow_interruptions = any(may_cut for _, may_cut in self.parts)
        self.interrupted = False
        self.paused = False
        self.sent_bytes = 0
        self.heard_ms: int | None = None  # set when the worker dropped part of it
        self.started_t: float | None = None  # time.monotonic() its first frame went out
        self.turn: TurnRecord | None = None  # the robot turn, once its audio went out
        self.reply_to: tuple[Any, float] | None = None  # (callee turn, its end of speech)
        self._call = call
        self._created = time.monotonic()
        self._on_started = on_started
        self._on_finished = on_finished
        self._on_heard = on_heard
        self._part_bytes: list[int] = []  # bytes sent per part, in order
        self._at = 0  # the part the callee is hearing (advanced by the part marks)
        self._onset: float | None = None  # the callee's speech onset that paused it
        self._clearing = False
        self._notes: dict[str, list[Any]] = {}
        self._sending: asyncio.Task[None] | None = None
        self._done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    @property
    def mark(self) -> str:
        return f"say{self.say_id}"

    @property
    def sent_ms(self) -> int:
        return pcm_ms(self.sent_bytes)

    @property
    def interruptible_now(self) -> bool:
        """The part the callee is hearing now may be cut."""
        return not self.done and self.parts[min(self._at, len(self.parts) - 1)][1]

    def start(self, group: asyncio.TaskGroup, prompts: PromptSource, *, name: str) -> None:
        """Send the line's audio from a task of `group` (see ``wait_until_sent``)."""
        self._sending = group.create_task(self._send(prompts), name=name)

    async def _send(self, prompts: PromptSource) -> None:
        self._call.cue(self.mark)
        last = len(self.parts) - 1
        for i, (text, _) in enumerate(self.parts):
            self._part_bytes.append(0)
            speech = prompts.speak(text, cache=not self.personal[i])
            async with contextlib.aclosing(speech) as chunks:
                async for chunk in chunks:
                    if self._call.ended is not None:
                        return
                    self._call.send_audio(chunk)
                    self.sent_bytes += len(chunk)
                    self._part_bytes[i] += len(chunk)
                    if self.turn is None:
                        self._started()
            self._call.mark(self.mark if i == last else f"{self.mark}.{i}")

    def _started(self) -> None:
        self.turn = TurnRecord(speaker="robot", text=self.text, interrupted=False)
        self.turn.detail["tts_ms"] = round((time.monotonic() - self._created) * 1000, 1)
        if self.kind:
            self.turn.detail["kind"] = self.kind
        for key, values in self._notes.items():
            self.turn.detail[key] = list(values)
        self._on_started(self)

    async def wait_until_sent(self) -> None:
        """Until every chunk is queued on the call (or the sending stopped)."""
        if self._sending is not None:
            await asyncio.wait([self._sending])

    async def wait_for_playout(self) -> bool:
        """Until the callee heard the line to its end or it was cut; True when interrupted."""
        return await asyncio.shield(self._done)

    @property
    def done(self) -> bool:
        return self._done.done()

    def note(self, key: str, value: Any) -> None:
        """Add `value` to the turn record's ``detail[key]`` list (kept until the turn exists)."""
        self._notes.setdefault(key, []).append(value)
        if self.turn is not None:
            self.turn.detail.setdefault(key, []).append(value)

    def pause(self, onset: float) -> bool:
        """The callee began speaking at `onset` (``time.monotonic``): hold the rest of the
        line. False when the part being heard may not be cut, or it is over or paused."""
        if self.paused or self.interrupted or not self.interruptible_now:
            return False
        self.paused = True
        self._onset = onset
        self._call.pause_audio()
        return True

    def resume(self) -> None:
        """Play the held rest on (the callee only backchannelled)."""
        if self.paused and not self.done and not self.interrupted:
            self.paused = False
            self._call.resume_audio()

    def interrupt(self) -> bool:
        """Barge-in: stop sending and drop what is queued or held. False when the part being
        heard may not be interrupted or the line is over already."""
        if self.interrupted or not self.interruptible_now:
            return False
        self.interrupted = True
        if self._sending is not None:
            self._sending.cancel()
        if self.sent_bytes:
            self._clearing = True
            self._call.clear_audio()  # PlayoutCleared settles it (and ends a pause)
        else:
            if self.paused:
                self._call.resume_audio()  # nothing of it is queued: unhold the line
            self._settle()
        return True

    def expects(self, event: CallEvent) -> bool:
        """`event` is this line's report (a worker answers pause and clear in order)."""
        if self.done:
            return False
        match event:
            case PlayoutMark(name) | PlayoutStarted(name):
                return name == self.mark or name.startswith(f"{self.mark}.")
            case PlayoutCleared():
                return self._clearing
            case PlayoutPaused():
                return self._onset is not None
        return False

    def on_playout(self, event: CallEvent) -> None:
        """The worker's report: a part or the whole line played, the line's first frame went
        out, the rest held, or the rest dropped."""
        if self.done:
            return
        match event:
            case PlayoutCleared(dropped_ms=dropped, last_audio_t=last):
                self._stop_time(last)
                self.interrupted = True
                self.heard_ms = max(0, self.sent_ms - dropped)
                self._settle()
            case PlayoutPaused(last_audio_t=last):
                self._stop_time(last)
            case PlayoutStarted(name=name, t=t) if name == self.mark:
                self.started_t = t
                if self._on_heard is not None:
                    self._on_heard(self)
            case PlayoutMark(name=name) if name == self.mark:
                self._settle()
            case PlayoutMark(name=name) if name.startswith(f"{self.mark}."):
                self._at = max(self._at, int(name.rsplit(".", 1)[1]) + 1)

    def _stop_time(self, last_audio_t: float | None) -> None:
        """Onset of the callee's speech -> last robot frame on the line, once per pause."""
        if self._onset is not None and last_audio_t is not None:
            self.note("stop_ms", round(max(0.0, last_audio_t - self._onset) * 1000, 1))
            self._onset = None

    def heard_text(self) -> str:
        """The line's text up to what the callee heard (by each part's share of its audio)."""
        if self.heard_ms is None:
            return self.text
        left = self.heard_ms
        out = []
        for (text, _), sent in zip(self.parts, self._part_bytes, strict=False):
            ms = pcm_ms(sent)
            if left >= ms:
                out.append(text)
                left -= ms
                continue
            if ms:
                out.append(text[: int(len(text) * left / ms)])
            break
        return "".join(out)

    def _settle(self) -> None:
        if self.turn is not None and self.heard_ms is not None:
            self.turn.interrupted = True
            self.turn.detail["heard_ms"] = self.heard_ms
            self.turn.detail["line"] = self.text
            self.turn.text = self.heard_text()
        self._done.set_result(self.interrupted)
        self._on_finished(self)
