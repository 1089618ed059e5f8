"""StreamAdapter: any utterance engine (Whisper) + an endpointer (VAD) -> a recognizer stream.

One adapter per process, shared by every call (it holds the one model). Per stream:

* **Onset**: webrtcvad (``Endpointer``) marks speech; with a ``confirm`` VAD (Silero) the
  onset audio is checked off the loop first, so noise never triggers a barge-in.
* **Partials**: while the callee talks, the growing utterance is re-decoded (``draft``: greedy,
  no retries) every ``partial_interval_s`` of new speech, only when the shared engine is idle
  and was at most ``partial_max_load`` busy over the last 2 s: a final never waits behind a
  queued partial, and under load not behind a running one either.
* **Speculative final**: after ``speculate_ms`` of trailing silence the utterance is decoded
  exactly as the final would be; if the endpoint follows without new speech, that decode *is*
  the final, so it is ready at (or soon after) the endpoint decision.
* **Adaptive endpoint** (``early_end_ms``): after that much silence, if the speculative decode
  is done and its text reads like a finished turn (``speech.turn.looks_complete``: no trailing
  conjunction, filler or ellipsis), the turn ends there; otherwise the endpointer's full
  ``end_silence_ms`` applies. A speculation still queued at ``early_end_ms`` is promoted to a
  final's priority, so under load the early endpoint does not slide into the full wait.
  Short complete replies get answered fast, and "我想问一下那个……" is not cut off.
* **Final** at the endpoint (``end_silence_ms`` of silence) or at the max-utterance cap.

Every decode goes through one ``DecodeScheduler`` (``speech.asr.schedule``): finals before
speculations before drafts, a speculation promoted when its turn ends and dropped unrun when the
callee speaks again; with ``batch_ms``, the finals of many calls decoded as one batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from core.audio import FRAME_BYTES, SAMPLE_RATE, pcm_bytes
from speech import vad
from speech.asr.base import (
    AsrEngine,
    Final,
    Partial,
    SpeechEnded,
    SpeechStarted,
    Transcript,
)
from speech.asr.schedule import DecodeJob, DecodeScheduler, Priority
from speech.stream import EventStream
from speech.turn import looks_complete

log = logging.getLogger(__name__)

_RECONFIRM_MS = 300  # re-check a doubted onset after this much more audio
_CONFIRM_BYTES = pcm_bytes(2.0)  # the confirm VAD looks at the last 2 s at most


class SpeechConfirmer(Protocol):
    """A second-opinion VAD (``speech.silero.SileroVad``); runs off the event loop."""

    async def confirm(self, pcm: bytes, sample_rate: int = SAMPLE_RATE) -> bool: ...


@dataclass(slots=True)
class AdapterStats:
    finals: int = 0
    partials: int = 0
    partials_skipped_busy: int = 0
    speculative: int = 0
    speculative_used: int = 0
    early_endpoints: int = 0  # turns ended at early_end_ms (the transcript looked complete)
    rejected_noise: int = 0  # utterances the confirm VAD called noise (nothing emitted)


class StreamAdapter:
    """StreamingAsr over an ``AsrEngine``; also forwards ``transcribe`` to it."""

    def __init__(
        self,
        engine: AsrEngine,
        make_endpointer: Callable[[], vad.Endpointer] | None = None,
        *,
        partial_interval_s: float | None = 0.7,
        speculate_ms: int | None = 300,
        early_end_ms: int | None = None,
        turn_complete: Callable[[str], bool] = looks_complete,
        confirm: SpeechConfirmer | None = None,
        capacity: int | None = None,
        prioritize: bool = True,
        partial_max_load: float = 0.5,
        batch_ms: int = 0,
        batch_max: int = 8,
    ) -> None:
        if partial_interval_s is not None and partial_interval_s <= 0:
            raise ValueError("partial_interval_s must be > 0 (or None: no partials)")
        if early_end_ms is not None and (speculate_ms is None or early_end_ms < speculate_ms):
            raise ValueError("early_end_ms needs speculation, with speculate_ms <= early_end_ms")
        self.engine = engine
        self.name = engine.name
        self._make_endpointer = make_endpointer or vad.Endpointer
        self.partial_interval_s = partial_interval_s
        self.speculate_ms = speculate_ms
        self.early_end_ms = early_end_ms
        self.turn_complete = turn_complete
        self.confirm = confirm
        self.capacity = capacity or int(getattr(engine, "max_workers", 1))
        self.scheduler = DecodeScheduler(
            engine, self.capacity, prioritize=prioritize, batch_ms=batch_ms, batch_max=batch_max
        )
        self.partial_max_load = partial_max_load  # no drafts when the engine is busier
        self.stats = AdapterStats()

    @property
    def inflight(self) -> int:
        return self.scheduler.inflight

    @property
    def idle(self) -> bool:
        """Nothing running beyond capacity and nothing queued (partials only run then)."""
        return self.scheduler.idle

    def stream(
        self,
        *,
        prompt: str | None = None,
        language: str | None = None,
        sample_rate: int = SAMPLE_RATE,
    ) -> AdapterStream:
        return AdapterStream(self, self._make_endpointer(), prompt, language, sample_rate)

    def submit(
        self, pcm: bytes, *, prompt: str | None, language: str | None, priority: Priority
    ) -> DecodeJob:
        """Queue one engine decode (8 kHz PCM16); finals go first (``DecodeScheduler``).
        Await ``job.future`` through ``asyncio.shield``: a cancelled caller cannot stop a
        decode already running in a worker thread."""
        return self.scheduler.submit(
            pcm, priority, prompt=prompt, language=language, draft=priority is Priority.DRAFT
        )

    async def transcribe(
        self,
        pcm: bytes,
        sample_rate: int = SAMPLE_RATE,
        *,
        prompt: str | None = None,
        language: str | None = None,
        draft: bool = False,
    ) -> Transcript:
        return await self.engine.transcribe(
            pcm, sample_rate, prompt=prompt, language=language, draft=draft
        )

    async def aclose(self) -> None:
        await self.scheduler.drain()
        close = getattr(self.confirm, "close", None)
        if close is not None:
            close()
        await self.engine.aclose()


class _Utterance:
    __slots__ = (
        "announced",
        "confirm_mark_ms",
        "early_checked",
        "end_emitted",
        "ended",
        "last_partial",
        "onset",
        "onset_t",
        "partial",
        "partial_mark_ms",
        "spec",
    )

    def __init__(self, onset_t: float) -> None:
        self.onset_t = onset_t
        self.announced = False  # SpeechStarted emitted
        self.ended = False
        self.end_emitted = False
        self.confirm_mark_ms = 0
        self.last_partial = ""
        self.onset: asyncio.Task[None] | None = None  # onset confirmation
        self.partial: asyncio.Task[None] | None = None
        self.partial_mark_ms = 0
        self.spec: DecodeJob | None = None  # the speculative decode of this utterance
        self.early_checked: DecodeJob | None = None  # the speculation judged for an early end


class AdapterStream(EventStream):
    def __init__(
        self,
        adapter: StreamAdapter,
        endpointer: vad.Endpointer,
        prompt: str | None,
        language: str | None,
        sample_rate: int,
    ) -> None:
        super().__init__(sample_rate=sample_rate)
        if endpointer.frame_bytes != FRAME_BYTES or endpointer.sample_rate != SAMPLE_RATE:
            raise ValueError("the endpointer must take 20 ms frames at 8 kHz")
        self._a = adapter
        self._ep = endpointer
        self.prompt = prompt
        self.language = language
        self._utt: _Utterance | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # finals, partials, confirmations
        self._finals = 0
        self._last_final: asyncio.Task[None] | None = None

    # --- frames (event loop, cheap) ----------------------------------------------------------

    def _on_frame(self, frame: bytes) -> None:
        self._handle(self._ep.push(frame))
        utt = self._utt
        if utt is None:
            return
        if utt.announced:
            self._maybe_speculate(utt)
            if self._maybe_end_early(utt):
                return
            self._maybe_partial(utt)
        else:
            self._maybe_reconfirm(utt)

    def _handle(self, events: list[vad.VadEvent]) -> None:
        for ev in events:
            if isinstance(ev, vad.VoiceStarted):
                self._start(ev.t)
            else:
                self._end(ev)

    def _on_flush(self) -> None:
        self._handle(self._ep.flush())

    def _on_end_input(self) -> None:
        self._handle(self._ep.flush())
        self._maybe_finish()

    async def _on_close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro: Coroutine[Any, Any, None], role: str) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        task.set_name(f"asr-stream.{role}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._fail(task.exception() or RuntimeError("recognizer task failed"))
        self._maybe_finish()

    def _maybe_finish(self) -> None:
        if self._input_ended and self._finals == 0:
            self._finish()

    # --- utterance lifecycle -----------------------------------------------------------------

    def _start(self, t: float) -> None:
        utt = self._utt = _Utterance(t)
        if self._a.confirm is None:
            utt.announced = True
            self._emit(SpeechStarted(t))
            return
        self._confirm_now(utt)

    def _confirm_now(self, utt: _Utterance) -> None:
        snap = self._ep.peek()
        if snap is not None:
            utt.confirm_mark_ms = self._ep.utterance_ms
            utt.onset = self._spawn(self._confirm_onset(utt, snap.pcm[-_CONFIRM_BYTES:]), "onset")

    def _maybe_reconfirm(self, utt: _Utterance) -> None:
        """An onset the confirm VAD doubted is checked again as the speech goes on (a soft or
        robotic start), so a real barge-in is only late by ``_RECONFIRM_MS``, not by a turn."""
        if utt.onset is not None and not utt.onset.done():
            return
        if self._ep.silence_ms or self._ep.utterance_ms - utt.confirm_mark_ms < _RECONFIRM_MS:
            return
        self._confirm_now(utt)

    async def _confirm_onset(self, utt: _Utterance, pcm: bytes) -> None:
        assert self._a.confirm is not None
        if await self._a.confirm.confirm(pcm) and not utt.announced:
            utt.announced = True
            self._emit(SpeechStarted(utt.onset_t))

    def _maybe_partial(self, utt: _Utterance) -> None:
        interval = self._a.partial_interval_s
        if interval is None or self._ep.silence_ms > 0 or utt.spec is not None:
            return
        if self._ep.utterance_ms - utt.partial_mark_ms < interval * 1000:
            return
        if utt.partial is not None and not utt.partial.done():
            return
        utt.partial_mark_ms = self._ep.utterance_ms
        if not self._a.idle or self._a.scheduler.utilization() > self._a.partial_max_load:
            self._a.stats.partials_skipped_busy += 1
            return
        snap = self._ep.peek()
        if snap is not None:
            utt.partial = self._spawn(self._partial(utt, snap.pcm, snap.t), "partial")

    async def _partial(self, utt: _Utterance, pcm: bytes, t: float) -> None:
        try:
            tr = await asyncio.shield(self._submit(pcm, Priority.DRAFT).future)
        except Exception:
            log.debug("partial decode failed", exc_info=True)
            return
        if tr.text and tr.text != utt.last_partial and not utt.ended:
            utt.last_partial = tr.text
            self._a.stats.partials += 1
            self._emit(Partial(tr.text, t))

    def _maybe_speculate(self, utt: _Utterance) -> None:
        spec_ms = self._a.speculate_ms
        if spec_ms is None:
            return
        silence = self._ep.silence_ms
        if silence == 0:
            if utt.spec is not None:  # speech resumed: drop that decode if it has not started
                self._a.scheduler.cancel(utt.spec)
                utt.spec = None
        elif silence >= spec_ms and utt.spec is None:
            snap = self._ep.peek()
            if snap is None:
                return
            utt.spec = self._submit(snap.pcm, Priority.SPECULATIVE)
            self._a.stats.speculative += 1

    def _maybe_end_early(self, utt: _Utterance) -> bool:
        """End the turn now if the silence reached ``early_end_ms`` and the (finished)
        speculative transcript reads like a complete turn. Judged once per speculation."""
        early = self._a.early_end_ms
        if early is None or utt.spec is None or self._ep.silence_ms < early:
            return False
        job = utt.spec
        fut = job.future
        if not fut.done():
            # the turn may end on it now: under load it must not wait behind other calls'
            # speculations until the full end_silence_ms has passed
            self._a.scheduler.promote(job)
            return False
        if job is utt.early_checked or fut.cancelled() or fut.exception():
            return False
        utt.early_checked = job
        if not self._a.turn_complete(fut.result().text):
            return False
        self._a.stats.early_endpoints += 1
        self._handle(self._ep.flush())
        return True

    def _submit(self, pcm: bytes, priority: Priority) -> DecodeJob:
        return self._a.submit(pcm, prompt=self.prompt, language=self.language, priority=priority)

    def _end(self, ev: vad.VoiceEnded) -> None:
        utt, self._utt = self._utt, None
        if utt is None:  # pragma: no cover - the endpointer always starts first
            return
        utt.ended = True
        if utt.announced:
            utt.end_emitted = True
            self._emit(SpeechEnded(ev.t))
        self._finals += 1
        self._last_final = self._spawn(self._finalize(utt, ev, self._last_final), "final")

    async def _finalize(
        self, utt: _Utterance, ev: vad.VoiceEnded, previous: asyncio.Task[None] | None
    ) -> None:
        try:
            await self._finalize_inner(utt, ev, previous)
        finally:
            self._finals -= 1

    async def _finalize_inner(
        self, utt: _Utterance, ev: vad.VoiceEnded, previous: asyncio.Task[None] | None
    ) -> None:
        if utt.onset is not None:
            await asyncio.gather(utt.onset, return_exceptions=True)
        if not utt.announced:
            confirm = self._a.confirm
            if confirm is not None and not await confirm.confirm(ev.pcm):
                self._a.stats.rejected_noise += 1
                return
            utt.announced = True
            self._emit(SpeechStarted(utt.onset_t))
        if not utt.end_emitted:
            utt.end_emitted = True
            self._emit(SpeechEnded(ev.t))
        spec = utt.spec
        # no voiced frame since the speculation (else it was dropped): the final's audio is the
        # same speech, with at most a little more trailing silence
        if spec is not None and not ev.capped:
            self._a.stats.speculative_used += 1
            self._a.scheduler.promote(spec)
            tr = await asyncio.shield(spec.future)
        else:
            tr = await asyncio.shield(self._submit(ev.pcm, Priority.FINAL).future)
        if previous is not None:  # finals go out in utterance order
            await asyncio.gather(previous, return_exceptions=True)
        self._a.stats.finals += 1
        self._emit(
            Final(
                text=tr.text,
                confidence=tr.confidence,
                start_t=utt.onset_t,
                end_t=ev.t,
                capped=ev.capped,
                decode_ms=round(tr.decode_s * 1000, 1),
                language=tr.language,
                alternatives=tr.alternatives,
            )
        )
