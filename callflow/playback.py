"""One handle per robot utterance: send its audio, interrupt it, learn how it ended.

``start`` sends the line as a task of the call's TaskGroup: a cached line is queued in one
piece, a new one chunk by chunk as it is synthesised; a playout mark after the last chunk says
when the callee has heard all of it. ``interrupt`` (barge-in, a direct call, never a message
queued behind audio) stops the sending at once, which closes the prompt stream (the rest of the
line is not synthesised for this call), and clears what the worker still had queued; its
``PlayoutCleared`` answer says how much the callee heard. The handle is settled by its mark,
by that answer, or at once when it is interrupted before any audio was sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from core.audio import pcm_ms
from speech.tts.base import PromptSource
from telephony.base import CallHandle, PlayoutCleared, PlayoutMark

from .machine import Say
from .results import TurnRecord


class Playback:
    """A robot line on one call (``allow_interruptions`` comes from the script state)."""

    def __init__(
        self,
        call: CallHandle,
        say: Say,
        *,
        on_started: Callable[[Playback], None],
        on_finished: Callable[[Playback], None],
    ) -> None:
        """`on_started`: its first audio is queued (``turn`` is set); `on_finished`: it was
        heard to its end or cut short (``interrupted``, ``heard_ms``, and ``turn`` tell)."""
        self.say_id = say.say_id
        self.text = say.text
        self.allow_interruptions = say.interruptible
        self.interrupted = False
        self.sent_bytes = 0
        self.heard_ms: int | None = None  # set when the worker dropped part of it
        self.turn: TurnRecord | None = None  # the robot turn, once its audio went out
        self._call = call
        self._created = time.monotonic()
        self._on_started = on_started
        self._on_finished = on_finished
        self._sending: asyncio.Task[None] | None = None
        self._done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    @property
    def mark(self) -> str:
        return f"say{self.say_id}"

    @property
    def sent_ms(self) -> int:
        return pcm_ms(self.sent_bytes)

    def start(self, group: asyncio.TaskGroup, prompts: PromptSource, *, name: str) -> None:
        """Send the line's audio from a task of `group` (see ``wait_until_sent``)."""
        self._sending = group.create_task(self._send(prompts), name=name)

    async def _send(self, prompts: PromptSource) -> None:
        async with contextlib.aclosing(prompts.speak(self.text)) as chunks:
            async for chunk in chunks:
                if self._call.ended is not None:
                    return
                self._call.send_audio(chunk)
                self.sent_bytes += len(chunk)
                if self.turn is None:
                    self._started()
        self._call.mark(self.mark)

    def _started(self) -> None:
        self.turn = TurnRecord(speaker="robot", text=self.text, interrupted=False)
        self.turn.detail["tts_ms"] = round((time.monotonic() - self._created) * 1000, 1)
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

    def interrupt(self) -> bool:
        """Barge-in: stop sending and drop what is queued. False when the line may not be
        interrupted or is over already."""
        if not self.allow_interruptions or self.interrupted or self.done:
            return False
        self.interrupted = True
        if self._sending is not None:
            self._sending.cancel()
        if self.sent_bytes:
            self._call.clear_audio()  # PlayoutCleared settles it
        else:
            self._settle()
        return True

    def on_playout(self, event: PlayoutMark | PlayoutCleared) -> None:
        """The worker's report: every frame played (our mark), or the rest dropped."""
        if self.done:
            return
        if isinstance(event, PlayoutCleared):
            self.interrupted = True
            self.heard_ms = max(0, self.sent_ms - event.dropped_ms)
            self._settle()
        elif event.name == self.mark:
            self._settle()

    def _settle(self) -> None:
        if self.turn is not None and self.heard_ms is not None:
            self.turn.interrupted = True
            self.turn.detail["heard_ms"] = self.heard_ms
        self._done.set_result(self.interrupted)
        self._on_finished(self)
